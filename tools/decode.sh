#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/slub decode [OBJECT | DIR]...: reads a debug report (SLUB_DEBUG) on stdin and writes it
# to stdout with every frame the allocator could not name, "0xADDR [object+0xOFF]", replaced by
# "FUNCTION [object+0xOFF] FILE:LINE" from addr2line (binutils), with " (inlined into ...)"
# for inlined calls: the kernel's scripts/decode_stacktrace.sh, for slub's reports.
# The report names an object by its file name only; the file is looked for among the OBJECTs
# given (same file name), in the DIRs given, in the current directory, on PATH, and in the
# loader's cache (ldconfig -p). Give the unstripped build of a stripped program (same code,
# built with -g) to get names and lines for the stripped one's frames. Frames whose object is
# not found, or that addr2line cannot place, are left as they are.
set -euo pipefail

die() {
  printf 'slub decode: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<'EOF'
usage: tools/slub decode [OBJECT | DIR]... < report > decoded
  Replaces the report's unnamed frames "0xADDR [object+0xOFF]" by "FUNCTION [object+0xOFF]
  FILE:LINE" (addr2line). OBJECT: a file whose name is the report's object name (e.g. the
  unstripped build of the program); DIR: a directory to look for objects in.
EOF
}

OBJECTS=()
DIRS=()
for arg in "$@"; do
  case "$arg" in
    -h | --help)
      usage
      exit 0
      ;;
    -*) die "unknown option '$arg' (see --help)" ;;
  esac
  if [[ -d "$arg" ]]; then
    DIRS+=("$arg")
  elif [[ -f "$arg" ]]; then
    OBJECTS+=("$arg")
  else
    die "no such file or directory: '$arg'"
  fi
done
command -v addr2line >/dev/null 2>&1 || die "addr2line not found (Debian package binutils)"
command -v readelf >/dev/null 2>&1 || die "readelf not found (Debian package binutils)"

declare -A FOUND=() BASE=()

# find_object NAME: the path of the object the report calls NAME, or nothing.
find_object() {
  local name=$1 o d p
  for o in "${OBJECTS[@]}"; do
    [[ "$(basename -- "$o")" == "$name" ]] && { printf '%s' "$o"; return; }
  done
  for d in "${DIRS[@]}" .; do
    [[ -f "$d/$name" ]] && { printf '%s' "$d/$name"; return; }
  done
  if p=$(command -v -- "$name" 2>/dev/null) && [[ -f "$p" ]]; then
    printf '%s' "$p"
    return
  fi
  if command -v ldconfig >/dev/null 2>&1; then
    p=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n { print $NF; exit }')
    [[ -n "$p" && -f "$p" ]] && printf '%s' "$p"
  fi
  return 0
}

# The report's offsets count from where the object's first segment is mapped: for a program
# not built as PIE that is its first PT_LOAD's address (page aligned), which addr2line needs.
load_base() {
  local v
  v=$(readelf -lW -- "$1" 2>/dev/null | awk '$1 == "LOAD" { print $3; exit }')
  [[ "$v" =~ ^0x[0-9a-fA-F]+$ ]] || v=0
  printf '%d' $((v & ~4095))
}

# decode_frame OBJECT-NAME HEX-OFFSET: sets DECODED to "FUNCTION ... FILE:LINE", or to nothing
# (no subshell, so that FOUND and BASE remember each object).
decode_frame() {
  local name=$1 off=$2 path out func loc first=1 text=""
  DECODED=""
  if [[ -z "${FOUND[$name]+x}" ]]; then
    FOUND[$name]=$(find_object "$name")
    [[ -n "${FOUND[$name]}" ]] && BASE[$name]=$(load_base "${FOUND[$name]}")
  fi
  path=${FOUND[$name]}
  [[ -n "$path" ]] || return 0
  # (A plain variable: an array subscript inside $(( )) would be expanded again as arithmetic,
  # so a report's object name could run commands.)
  local base=${BASE[$name]:-0}
  # A return address: the call is the byte before it.
  out=$(addr2line -f -i -C -e "$path" "$(printf '0x%x' $((0x$off + base - 1)))" 2>/dev/null) ||
    return 0
  while IFS= read -r func && IFS= read -r loc; do
    loc=${loc%% (discriminator*}
    [[ "$func" == "??" && "$loc" == "??:0" ]] && return 0
    loc=${loc##*/}
    [[ "$loc" == "??:"* ]] && loc=""  # a name without a line
    if ((first)); then
      text="$func [$name+0x$off]${loc:+ $loc}"
      first=0
    else
      text+=" (inlined into $func${loc:+ $loc})"
    fi
  done <<<"$out"
  DECODED=$text
}

# The object's name may hold '+' (libstdc++.so.6): the offset is after the last "+0x".
FRAME='0x[0-9a-f]+ \[([^] ]+)\+0x([0-9a-f]+)\]'
while IFS= read -r line || [[ -n "$line" ]]; do
  done_part=""
  rest=$line
  while [[ "$rest" =~ $FRAME ]]; do
    whole=${BASH_REMATCH[0]}
    before=${rest%%"$whole"*}
    decode_frame "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    done_part+="$before${DECODED:-$whole}"
    rest=${rest#*"$whole"}
  done
  printf '%s\n' "$done_part$rest"
done
