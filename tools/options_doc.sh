#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# options_doc.sh --check|--update SLUB_OPTIONS DOC: the table of DOC (docs/OPTIONS.md) between
# its two marker lines is the output of `SLUB_OPTIONS --markdown` (build/tools/slub_options,
# which prints the library's own options table). --check fails, with the difference, when they
# differ (the ctest test lint.options_docs); --update rewrites that part of DOC (what
# `tools/slub options --update-docs` runs).
set -euo pipefail

BEGIN='<!-- BEGIN generated options table: tools/slub options --update-docs -->'
END='<!-- END generated options table -->'

(($# == 3)) || {
  echo "usage: $0 --check|--update SLUB_OPTIONS DOC" >&2
  exit 2
}
mode=$1 prog=$2 doc=$3
[[ $mode == --check || $mode == --update ]] || {
  echo "$0: unknown mode $mode" >&2
  exit 2
}
grep -qxF "$BEGIN" "$doc" && grep -qxF "$END" "$doc" || {
  echo "$doc: the marker lines are missing:" >&2
  printf '  %s\n' "$BEGIN" "$END" >&2
  exit 1
}

table=$("$prog" --markdown)
current=$(awk -v b="$BEGIN" -v e="$END" '$0 == e { inside = 0 } inside { print } $0 == b { inside = 1 }' "$doc")

if [[ $mode == --check ]]; then
  if [[ "$table" != "$current" ]]; then
    echo "$doc: the options table differs from the library's (< in $doc, > from $prog):" >&2
    diff <(printf '%s\n' "$current") <(printf '%s\n' "$table") >&2 || true
    echo "regenerate it with: tools/slub options --update-docs" >&2
    exit 1
  fi
  exit 0
fi

# ENVIRON, not awk -v: -v would take backslashes in the table as escapes.
updated=$(TABLE="$table" awk -v b="$BEGIN" -v e="$END" '
  $0 == b { print; print ENVIRON["TABLE"]; skip = 1; next }
  $0 == e { skip = 0 }
  !skip { print }' "$doc")
printf '%s\n' "$updated" >"$doc"
