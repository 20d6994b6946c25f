# SPDX-License-Identifier: MIT
# slub's version: the project() version of the top-level CMakeLists.txt, the only place it is
# written. slub_write_version_header(VERSION DIR) generates DIR/slub/version.h from
# cmake/slub_version.h.in; slub_read_project_version(VAR ROOT) reads the version from
# ROOT/CMakeLists.txt, for tests/fuzz, a project of its own.
function(slub_write_version_header version dir)
  if(NOT version MATCHES "^([0-9]+)\\.([0-9]+)\\.([0-9]+)$")
    message(FATAL_ERROR "slub: the version must be MAJOR.MINOR.PATCH, not '${version}'")
  endif()
  set(SLUB_VERSION_MAJOR ${CMAKE_MATCH_1})
  set(SLUB_VERSION_MINOR ${CMAKE_MATCH_2})
  set(SLUB_VERSION_PATCH ${CMAKE_MATCH_3})
  configure_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/slub_version.h.in ${dir}/slub/version.h
                 @ONLY)
endfunction()

function(slub_read_project_version var root)
  file(STRINGS ${root}/CMakeLists.txt line REGEX "^project\\(slub VERSION [0-9.]+")
  if(NOT line MATCHES "VERSION ([0-9]+\\.[0-9]+\\.[0-9]+)")
    message(FATAL_ERROR "slub: no 'project(slub VERSION X.Y.Z' line in ${root}/CMakeLists.txt")
  endif()
  set(${var} ${CMAKE_MATCH_1} PARENT_SCOPE)
endfunction()
