#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench.harness_json: the harness's --json on a tiny machine (16 CPUs, 2 nodes, every workload
# and allocator, 100 ops per thread, 0.5 s idle phase). The file must be strict JSON (no NaN
# or Infinity), one object per run whose keys come in today's order (allocator, workload, cpus,
# nodes, ok, then the metrics in the order of the --csv file), and the counts must be exact
# integers: queue_bytes is the sum of its four parts to the byte, slab memory a whole number
# of pages. Nothing is timed.
# usage: harness_json_test.sh PATH/TO/harness
set -euo pipefail
[[ $# -eq 1 && -x $1 ]] || { echo "usage: $0 PATH/TO/harness" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/slub-hjson.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

rc=0
"$1" --cpus 16 --nodes 2 --allocator all --workload all --ops 100 --caches 4 --idle-secs 0.5 \
  --json "$TMP/runs.json" --csv "$TMP/runs.csv" >"$TMP/out" 2>"$TMP/err" || rc=$?
if ((rc != 0)); then
  cat "$TMP/err" >&2
  echo "FAIL: the harness exited with status $rc" >&2
  exit 1
fi

python3 - "$TMP/runs.json" "$TMP/runs.csv" <<'EOF'
import csv, json, sys

def no_constant(name):
    raise ValueError(f"{name} is not JSON")

with open(sys.argv[1]) as f:
    runs = json.load(f, parse_constant=no_constant)
csv_order = {}
with open(sys.argv[2]) as f:
    for row in csv.DictReader(f):
        key = (row["allocator"], row["workload"])
        m = row["metric"]
        if m != "ok" and not m.startswith("stranded_bytes@"):
            csv_order.setdefault(key, []).append(m)

errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

check(isinstance(runs, list) and len(runs) == 15, f"expected 15 runs, got {len(runs)}")
seen = set()
for r in runs:
    name = f"{r.get('allocator')}/{r.get('workload')}"
    seen.add((r.get("allocator"), r.get("workload")))
    keys = list(r)
    check(keys[:5] == ["allocator", "workload", "cpus", "nodes", "ok"], f"{name}: keys {keys[:5]}")
    check(r["cpus"] == 16 and r["nodes"] == 2, f"{name}: cpus/nodes {r['cpus']}/{r['nodes']}")
    check(r["ok"] is True, f"{name}: ok is {r['ok']!r} ({r.get('error')})")
    metrics = [k for k in keys[5:] if k not in ("stranded", "check_failed")]
    check(metrics == csv_order.get((r["allocator"], r["workload"])),
          f"{name}: metric keys {metrics} differ from the CSV's order")
    for k in metrics:
        check(r[k] is None or isinstance(r[k], (int, float)), f"{name}: {k} = {r[k]!r}")
    for k in [k for k in metrics if k.endswith("_bytes") or k in ("caches_made", "partial_slabs")]:
        check(isinstance(r[k], int), f"{name}: {k} = {r[k]!r} is not an exact integer")
    parts = sum(r[k] for k in ("cpu_bytes", "shared_bytes", "alien_bytes", "node_bytes"))
    check(r["queue_bytes"] == parts, f"{name}: queue_bytes {r['queue_bytes']} != sum {parts}")
    check(r["slab_bytes"] % 4096 == 0, f"{name}: slab_bytes {r['slab_bytes']} not whole pages")
    if r["workload"] == "idle":
        st = r.get("stranded", [])
        check(len(st) >= 2, f"{name}: {len(st)} stranded samples")
        for s in st:
            check(list(s) == ["t", "objects", "bytes"], f"{name}: sample keys {list(s)}")
            check(isinstance(s["objects"], int) and isinstance(s["bytes"], int),
                  f"{name}: sample {s} not integers")
    else:
        check("stranded" not in r, f"{name}: stranded samples outside idle")
want = {(a, w) for a in ("slab", "slub-classic", "slub")
        for w in ("churn", "prodcons", "burst", "caches", "idle")}
check(seen == want, f"runs {sorted(seen)}")
for e in errors:
    print("FAIL:", e, file=sys.stderr)
print(f"bench.harness_json: {len(runs)} runs, {len(errors)} problems")
sys.exit(1 if errors else 0)
EOF
