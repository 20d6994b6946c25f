#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# g++ compiling a small C++17 program (gxx_compile_prog.cc) under LD_PRELOAD, so that the
# compiler driver, cc1plus, as and ld all run on the preload library; then the binary built
# that way runs preloaded too. The generated assembly must match the plain compiler's, and the
# program's output and exit status must match the plainly built, plainly run binary.
# usage: gxx_compile.sh PATH/TO/libslub.so
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need g++
check_preload
cd "$TMP"
cp "$HERE/gxx_compile_prog.cc" prog.cc
FLAGS=(-std=c++17 -O2 -Wall -frandom-seed=slub)

# 1. The compiler's own output: assembly, byte for byte (both runs write to stdout).
run_pair asm g++ "${FLAGS[@]}" -S -o - prog.cc
compare_outputs asm

# 2. Build an executable plain, and one with the preloaded toolchain.
# shellcheck disable=SC2016 # expanded by the inner sh
run_pair build sh -c 'exec g++ "$@" -o "prog.$(test -n "${LD_PRELOAD:-}" && echo slub || echo plain)" prog.cc' \
  sh "${FLAGS[@]}"
[[ -x prog.plain && -x prog.slub ]] || fail "g++ did not produce both executables"

# 3. Run: plain binary without preload vs preload-built binary with preload.
rc_plain=0
./prog.plain >run.plain.out 2>run.plain.err || rc_plain=$?
((rc_plain == 0)) || fail "the plainly built program exited with $(describe_status "$rc_plain")"
rc_slub=0
LD_PRELOAD="$PRELOAD" ./prog.slub >run.slub.out 2>run.slub.err || rc_slub=$?
if ((rc_slub != rc_plain)); then
  tail -n 40 run.slub.err >&2
  repro ./prog.slub
  fail "run: exit status $(describe_status "$rc_slub") under preload, $rc_plain plain"
fi
check_new_stderr run ./prog.slub
compare_outputs run
