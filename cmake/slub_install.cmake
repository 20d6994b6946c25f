# SPDX-License-Identifier: MIT
# What `cmake --install build --prefix P` (and `tools/slub install P`) puts under P:
#   lib/libslub.so.X.Y.Z (SONAME libslub.so.X), lib/libslub.so.X, lib/libslub.so, lib/libslub.a
#   include/slub/*.h, *.hpp and the generated include/slub/version.h
#   lib/cmake/slub/: slubConfig.cmake, slubConfigVersion.cmake, slubTargets*.cmake, so that
#     find_package(slub) gives the imported targets slub::slub and slub::slub_static
#   lib/pkgconfig/slub.pc
#   bin/slub_options, bin/slabinfo (when nlohmann-json3-dev was there to build it)
#   share/man/man7/slub.7, generated at build time with the options table of the library
# The test integration.install (tests/install/) installs the build into a temporary prefix and
# builds a consumer against it both ways. Included at the end of the top-level CMakeLists.txt.
include(CMakePackageConfigHelpers)

set(SLUB_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/slub)

install(TARGETS slub slub_static EXPORT slubTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/slub ${PROJECT_BINARY_DIR}/include/slub
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")

# The CMake package. Only Threads is a dependency (slub::slub_static links it and libdl);
# hwloc and liburcu are dlopened when needed.
install(EXPORT slubTargets NAMESPACE slub:: DESTINATION ${SLUB_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/slubConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/slubConfig.cmake
                              INSTALL_DESTINATION ${SLUB_CMAKE_DIR})
# libslub.so.X: the same major version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/slubConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/slubConfig.cmake ${PROJECT_BINARY_DIR}/slubConfigVersion.cmake
        DESTINATION ${SLUB_CMAKE_DIR})

# slub.pc: relocatable (paths from ${pcfiledir}), so it is right for any --prefix.
file(RELATIVE_PATH SLUB_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" SLUB_PC_TO_PREFIX "${SLUB_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/slub.pc.in ${PROJECT_BINARY_DIR}/slub.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/slub.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The tools.
install(TARGETS slub_options RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET slabinfo)
  install(TARGETS slabinfo RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# slub(7): docs/man/slub.7.in with the options table as slub_options --roff prints it
# (cmake/slub_man.cmake), so the page lists every option of the library it was built with.
set(SLUB_MAN_PAGE ${PROJECT_BINARY_DIR}/docs/man/slub.7)
add_custom_command(
  OUTPUT ${SLUB_MAN_PAGE}
  COMMAND ${CMAKE_COMMAND} -DSLUB_OPTIONS=$<TARGET_FILE:slub_options>
          -DSLUB_MAN_IN=${PROJECT_SOURCE_DIR}/docs/man/slub.7.in -DSLUB_MAN_OUT=${SLUB_MAN_PAGE}
          -DSLUB_VERSION=${PROJECT_VERSION} -P ${PROJECT_SOURCE_DIR}/cmake/slub_man.cmake
  DEPENDS slub_options ${PROJECT_SOURCE_DIR}/docs/man/slub.7.in
          ${PROJECT_SOURCE_DIR}/cmake/slub_man.cmake
  COMMENT "Generating slub(7)"
  VERBATIM)
add_custom_target(slub_man ALL DEPENDS ${SLUB_MAN_PAGE})
install(FILES ${SLUB_MAN_PAGE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man7)

# Everything the rules above install, for `tools/slub install` to build only that.
add_custom_target(slub_installables DEPENDS slub slub_static slub_options slub_man)
if(TARGET slabinfo)
  add_dependencies(slub_installables slabinfo)
endif()
