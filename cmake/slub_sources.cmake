# SPDX-License-Identifier: MIT
# The allocator's sources, for the top-level project (slub_objs) and tests/fuzz (compiled again
# with coverage instrumentation): one list, so that a new layer cannot be left out of either.
# Sets SLUB_CORE_SOURCES from SLUB_SOURCE_ROOT (the repository root).
file(GLOB SLUB_CORE_SOURCES CONFIGURE_DEPENDS
  ${SLUB_SOURCE_ROOT}/src/pal/*.cc ${SLUB_SOURCE_ROOT}/src/mm/*.cc ${SLUB_SOURCE_ROOT}/src/core/*.cc
  ${SLUB_SOURCE_ROOT}/src/slab/*.cc ${SLUB_SOURCE_ROOT}/src/slub/*.cc
  ${SLUB_SOURCE_ROOT}/src/cache/*.cc ${SLUB_SOURCE_ROOT}/src/frontend/api.cc
  ${SLUB_SOURCE_ROOT}/src/frontend/mallinfo.cc)
