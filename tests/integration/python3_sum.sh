#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# python3 -c 'print(sum(len(str(i)) for i in range(10**6)))': a million short-lived strings.
# usage: python3_sum.sh PATH/TO/libslub.so
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PY=/usr/bin/python3
need "$PY"
check_preload
cd "$TMP"
run_pair sum "$PY" -c 'print(sum(len(str(i)) for i in range(10**6)))'
[[ "$(cat "$TMP/sum.plain.out")" == 5888890 ]] || fail "unexpected plain result: $(cat "$TMP/sum.plain.out")"
compare_outputs sum
