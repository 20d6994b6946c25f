#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cxx_program (built from cxx_program.cc, linked normally, not against slub): every form of
# operator new/delete, aligned and nothrow new, cross-thread frees, container churn. Its
# output must be identical with and without the preload library.
# usage: cxx_program.sh PATH/TO/libslub.so PATH/TO/cxx_program
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $# -ge 2 && -x "$2" ]] || fail "usage: $0 PATH/TO/libslub.so PATH/TO/cxx_program (got '${2:-}')"
PROG="$(readlink -f "$2")"
check_preload
cd "$TMP"
run_pair cxx "$PROG"
grep -qx 'misaligned 0' "$TMP/cxx.plain.out" || fail "plain run: unexpected output"
compare_outputs cxx
