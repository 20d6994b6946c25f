#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench.suite.kfence: the suite's KFENCE overhead mode (tools/bench_suite.py --kfence). A tiny
# run (--quick, 2 rounds, two workloads at 1 thread) must exit 0 and write kfence.json with a
# row per cell for both variants, the geomean, the RSS differences and the targets, and print
# the table; bad uses of --kfence must exit 2; suite_spawn -e must put its variables in the
# measured command; the KFENCE section of docs/BENCHMARKS.md must be replaced, or inserted
# before "## Reproducing". Nothing here is timed: the numbers are only checked for their shape.
# usage: kfence_test.sh PYTHON SOURCE_DIR BUILD_DIR
set -uo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 PYTHON SOURCE_DIR BUILD_DIR" >&2; exit 2; }
PY=$1
SRC=$2
BUILD=$3
SUITE=$SRC/tools/bench_suite.py
TMP=$(mktemp -d "${TMPDIR:-/tmp}/slub-kfence-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
unset LD_PRELOAD SLUB_KFENCE
failed=0
bad() { echo "FAIL: $*" >&2; failed=1; }

# expect_usage_error ARGS...: bench_suite.py ARGS exits 2.
expect_usage_error() {
  local rc=0
  timeout 60 "$PY" "$SUITE" --build "$BUILD" --out "$TMP/bad" "$@" >"$TMP/bad.out" 2>&1 || rc=$?
  ((rc == 2)) || bad "bench_suite.py $*: exit status $rc, expected 2: $(tail -n 3 "$TMP/bad.out")"
}
expect_usage_error --kfence -1
expect_usage_error --kfence ten
expect_usage_error --kfence --allocators slub,jemalloc

# suite_spawn -e: the variables reach the command (and the command's own argument -e is its).
# shellcheck disable=SC2016 # the command's shell expands them
out=$(timeout 20 "$BUILD/bench/suite/suite_spawn" -e SLUB_KFENCE=100 --env=X=a=b "$TMP/stat" - \
  sh -c 'echo "$SLUB_KFENCE $X" "$0"' -e 2>&1)
[[ $out == "100 a=b -e" ]] ||
  bad "suite_spawn -e: the command printed '$out', expected '100 a=b -e'"
grep -q '^status=0 ' "$TMP/stat" || bad "suite_spawn -e: no status=0 in $(cat "$TMP/stat")"
rc=0
timeout 20 "$BUILD/bench/suite/suite_spawn" -e NOVALUE "$TMP/stat" - true 2>/dev/null || rc=$?
((rc == 125)) || bad "suite_spawn -e NOVALUE: exit status $rc, expected 125"

# The tiny run.
rc=0
timeout 120 "$PY" "$SUITE" --build "$BUILD" --out "$TMP/out" --kfence --quick --rounds 2 \
  --workloads cache-thrash,larson --threads 1 >"$TMP/run.out" 2>"$TMP/run.err" || rc=$?
if ((rc != 0)); then
  bad "bench_suite.py --kfence: exit status $rc:"$'\n'"$(tail -n 20 "$TMP/run.err")"
else
  # shellcheck disable=SC2016 # backquotes of the markdown, not a command
  grep -q '^### KFENCE overhead: slub-kfence (`SLUB_KFENCE=100`) against slub (`SLUB_KFENCE=0`)' \
    "$TMP/run.out" || bad "no KFENCE overhead heading on stdout"
  grep -q '^| workload | threads | slub (s) | slub-kfence (s) | time ratio |' "$TMP/run.out" ||
    bad "no KFENCE overhead table on stdout"
  grep -q '^- \*\*Geomean time ratio\*\* over 2 cells: ' "$TMP/run.out" ||
    bad "no geomean line on stdout"
  # Every run of samples.csv is one of the two variants, 2 rounds x 2 cells each.
  for v in slub slub-kfence; do
    n=$(grep -c ",$v,[01]," "$TMP/out/samples.csv")
    ((n == 4)) || bad "samples.csv: $n runs of $v, expected 4"
  done
  "$PY" - "$TMP/out/kfence.json" <<'EOF' || failed=1
import json, sys
d = json.load(open(sys.argv[1]))
problems = []
def want(cond, what):
    if not cond:
        problems.append(what)
want(d["interval_ms"] == 100 and d["rounds"] == 2 and d["quick"] is True, "run parameters")
want(d["variants"] == {"slub": {"SLUB_KFENCE": "0"},
                       "slub-kfence": {"SLUB_KFENCE": "100"}}, "variants")
want([(c["workload"], c["threads"]) for c in d["cells"]] == [("cache-thrash", 1), ("larson", 1)],
     "cells")
for c in d["cells"]:
    for v in ("slub", "slub-kfence"):
        want(c["runs"][v] == 2, f"{c['workload']}: runs of {v}")
        want(c["time_s"][v] > 0 and c["maxrss_mib"][v] > 0, f"{c['workload']}: medians of {v}")
    want(not c["failed"] and c["time_ratio"] > 0 and c["same_round_time_ratio"] > 0,
         f"{c['workload']}: ratios")
    want(abs(c["rss_diff_mib"] - (c["maxrss_mib"]["slub-kfence"] - c["maxrss_mib"]["slub"]))
         < 1e-9, f"{c['workload']}: rss_diff_mib")
want(d["geomean_cells"] == 2 and d["geomean_time_ratio"] > 0
     and d["geomean_same_round_time_ratio"] > 0, "geomeans")
r = d["rss_diff_mib"]
want(r["largest"] == max(c["rss_diff_mib"] for c in d["cells"])
     and r["largest_cell"] in ("cache-thrash/1", "larson/1"), "largest RSS difference")
want(abs(r["mean"] - sum(c["rss_diff_mib"] for c in d["cells"]) / 2) < 1e-9, "mean RSS diff")
t = d["targets"]
want(t["time_ratio"] == 1.01 and t["rss_diff_mib"] == 2.0, "targets")
want(t["time_met"] == (d["geomean_time_ratio"] <= 1.01)
     and t["rss_met"] == (r["largest"] <= 2.0), "verdicts")
want(d["failures"] == [], "failures")
for p in problems:
    print(f"FAIL: kfence.json: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
fi

# The doc section: replaced where it is, inserted before "## Reproducing" where it is not.
"$PY" - "$SRC/tools" <<'EOF' || failed=1
import sys
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
import bench_suite as bs
new = bs.kfence_section("NUMBERS\n")
doc = "# T\n\n## Results\n\nr\n\n" + bs.kfence_section() + "\n## Reproducing\n\nx\n"
got = bs.with_section(doc, bs.KFENCE_HEADING, new)
want = "# T\n\n## Results\n\nr\n\n" + new + "\n## Reproducing\n\nx\n"
ok = got == want and "(numbers: see the issue-20 run)" in doc
got2 = bs.with_section("# T\n\n## Reproducing\n\nx\n", bs.KFENCE_HEADING, new)
ok = ok and got2 == "# T\n\n" + new + "\n## Reproducing\n\nx\n"
if not ok:
    print("FAIL: with_section did not replace or insert the KFENCE section", file=sys.stderr)
sys.exit(0 if ok else 1)
EOF

((failed == 0)) && echo "ok   bench_suite.py --kfence"
exit "$failed"
