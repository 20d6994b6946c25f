# SPDX-License-Identifier: MIT
# cmake -DSLUB_OPTIONS=PROG -DSLUB_MAN_IN=docs/man/slub.7.in -DSLUB_MAN_OUT=FILE
#       -DSLUB_VERSION=X.Y.Z -P slub_man.cmake
# Writes slub(7): SLUB_MAN_IN with @SLUB_OPTIONS_ROFF@ replaced by `PROG --roff` (the options
# table of the library, one paragraph per option), @SLUB_VERSION@ by SLUB_VERSION and
# @SLUB_DATE@ by the date (SOURCE_DATE_EPOCH when set).
cmake_minimum_required(VERSION 3.20)  # the policies of today (CMP0053: no @VAR@ in arguments)
foreach(var SLUB_OPTIONS SLUB_MAN_IN SLUB_MAN_OUT SLUB_VERSION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "slub_man.cmake: -D${var}=... is missing")
  endif()
endforeach()

execute_process(COMMAND ${SLUB_OPTIONS} --roff OUTPUT_VARIABLE options RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR options STREQUAL "")
  message(FATAL_ERROR "slub_man.cmake: ${SLUB_OPTIONS} --roff failed (${rc})")
endif()
string(TIMESTAMP date "%Y-%m-%d" UTC)

file(READ ${SLUB_MAN_IN} page)
if(NOT page MATCHES "\n@SLUB_OPTIONS_ROFF@\n")
  message(FATAL_ERROR "slub_man.cmake: ${SLUB_MAN_IN} has no @SLUB_OPTIONS_ROFF@ line")
endif()
string(REPLACE "\n@SLUB_OPTIONS_ROFF@\n" "\n${options}" page "${page}")
string(REPLACE "@SLUB_VERSION@" "${SLUB_VERSION}" page "${page}")
string(REPLACE "@SLUB_DATE@" "${date}" page "${page}")
file(WRITE ${SLUB_MAN_OUT}.tmp "${page}")
file(RENAME ${SLUB_MAN_OUT}.tmp ${SLUB_MAN_OUT})
