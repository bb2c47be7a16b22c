# Embed every file of a directory into a generated C++ source as byte arrays, with a table
# { relative path, data, size, mode } consumed by src/util/embedded.hpp.
function(rbox_embed_dir name dir out)
  file(GLOB_RECURSE files CONFIGURE_DEPENDS RELATIVE "${dir}" "${dir}/*")
  list(SORT files)
  set(deps)
  foreach(f ${files})
    list(APPEND deps "${dir}/${f}")
  endforeach()
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DDIR=${dir} -DOUT=${out} -P "${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake"
    DEPENDS ${deps} "${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake"
    COMMENT "Embedding ${dir}")
endfunction()
