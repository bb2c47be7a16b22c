# Static (release) linking: the rbox_deps interface target from Debian's .a files plus the
# HTTP/HTTPS-only libcurl rebuilt by scripts/build-static-deps.sh (STATIC.md). Same role as
# cmake/deps.cmake; it must not fall back to any .so or to Debian's unusable libcurl.a.

if(NOT EXISTS "${RBOX_STATIC_DEPS_PREFIX}/lib/libcurl.a" OR
   NOT EXISTS "${RBOX_STATIC_DEPS_PREFIX}/include/curl/curl.h")
  message(FATAL_ERROR "RBOX_STATIC: no rebuilt curl in ${RBOX_STATIC_DEPS_PREFIX}; run "
                      "scripts/build-static-deps.sh ${RBOX_STATIC_DEPS_PREFIX} (or scripts/build-static.sh)")
endif()

# Release at -O2, not CMake's -O3: GCC 12 at -O3 reports false -Wrestrict overlaps inside
# libstdc++'s std::string (GCC bugs 105329/105651), which -Werror turns into failures. -O2 is
# also what STATIC.md measured (Debian's .a files dominate the size either way).
string(REPLACE "-O3" "-O2" CMAKE_CXX_FLAGS_RELEASE "${CMAKE_CXX_FLAGS_RELEASE}")
string(REPLACE "-O3" "-O2" CMAKE_C_FLAGS_RELEASE "${CMAKE_C_FLAGS_RELEASE}")

# -static-pie keeps ASLR for +0.7 MiB (STATIC.md, verified with every .a below).
option(RBOX_STATIC_PIE "Link the static binary as a static PIE (ASLR)" ON)

# Every archive the release links, in no particular order (the link group rescans them).
# Debian's pkg-config files are wrong for static use (libcurl.pc, squashfuse_ll.pc), so the
# list is explicit:
#   curl: cares nghttp2 ssl crypto zstd z        archive: acl zstd lzma lz4 z (tar + gzip/zstd/xz only)
#   squashfuse_ll/squashfuse: fuse3 lzo2 lz4 zstd lzma z   squashfs (tools-ng): lz4 z lzma zstd
#   seccomp, cap, yaml-cpp, deflate: standalone
set(RBOX_STATIC_LIBS
    curl cares nghttp2 ssl crypto archive acl yaml-cpp squashfuse_ll squashfuse fuse3 squashfs
    lzo2 lz4 zstd lzma z deflate seccomp cap)

set(_rbox_saved_suffixes ${CMAKE_FIND_LIBRARY_SUFFIXES})
set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
set(_rbox_static_targets)
foreach(lib IN LISTS RBOX_STATIC_LIBS)
  if(lib STREQUAL "curl")
    # Only the rebuilt one: Debian's libcurl.a needs krb5/p11-kit, which have no .a.
    find_library(RBOX_STATIC_LIB_${lib} NAMES ${lib} PATHS "${RBOX_STATIC_DEPS_PREFIX}/lib"
                 NO_DEFAULT_PATH REQUIRED)
  else()
    find_library(RBOX_STATIC_LIB_${lib} NAMES ${lib} REQUIRED)
  endif()
  add_library(rbox_static::${lib} STATIC IMPORTED)
  set_target_properties(rbox_static::${lib} PROPERTIES IMPORTED_LOCATION "${RBOX_STATIC_LIB_${lib}}")
  list(APPEND _rbox_static_targets rbox_static::${lib})
endforeach()
set(CMAKE_FIND_LIBRARY_SUFFIXES ${_rbox_saved_suffixes})

# Include directories only (never libraries) from pkg-config, for the modules cmake/deps.cmake
# uses, so the headers seen are the same as in the dynamic build (/usr/include/fuse3 comes from
# here). libcurl is left out on purpose: its headers come from the prefix. squashfuse is left out
# too: its .pc adds /usr/include/squashfuse, whose config.h/util.h/fs.h would shadow other
# headers; include it as <squashfuse/ll.h>.
find_package(PkgConfig REQUIRED)
pkg_check_modules(RBOX_STATIC_PC REQUIRED
  libarchive yaml-cpp nlohmann_json CLI11 fuse3 libsquashfs1 libseccomp libcap
  libssl libcrypto libzstd liblz4 liblzma zlib libdeflate)

add_library(rbox_deps INTERFACE)
# BEFORE: the rebuilt curl's headers must win over /usr/include/x86_64-linux-gnu/curl.
target_include_directories(rbox_deps BEFORE INTERFACE "${RBOX_STATIC_DEPS_PREFIX}/include")
target_include_directories(rbox_deps INTERFACE ${RBOX_STATIC_PC_INCLUDE_DIRS})
target_compile_definitions(rbox_deps INTERFACE CURL_STATICLIB)
target_compile_options(rbox_deps INTERFACE -ffunction-sections -fdata-sections)

# RESCAN wraps the archives in --start-group/--end-group, so their order does not matter.
# pthread/dl/rt are empty stubs in glibc >= 2.34 but keep older toolchains linking.
list(JOIN _rbox_static_targets "," _rbox_group)
target_link_libraries(rbox_deps INTERFACE "$<LINK_GROUP:RESCAN,${_rbox_group}>" pthread dl rt)

# glibc prints ~9 "Using 'getpwuid' in statically linked applications requires..." warnings;
# they are expected (NSS is pinned in src/util/nss.cpp) and must stay non-fatal, so no
# --fatal-warnings here.
if(RBOX_STATIC_PIE)
  target_compile_options(rbox_deps INTERFACE -fPIE)
  target_link_options(rbox_deps INTERFACE -static-pie -Wl,--gc-sections)
else()
  target_link_options(rbox_deps INTERFACE -static -Wl,--gc-sections)
endif()
