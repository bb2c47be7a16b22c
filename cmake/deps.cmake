# Dynamic (development) linking of the Debian -dev packages through pkg-config.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(RBOX_PC REQUIRED IMPORTED_TARGET
  libarchive libcurl yaml-cpp nlohmann_json CLI11 fuse3 libsquashfs1 libseccomp libcap
  libssl libcrypto libzstd liblz4 liblzma zlib)
find_library(RBOX_LIBDEFLATE deflate REQUIRED)
add_library(rbox_deps INTERFACE)
target_link_libraries(rbox_deps INTERFACE PkgConfig::RBOX_PC ${RBOX_LIBDEFLATE} Threads::Threads)
