#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Turns the raw outputs of tools/bench.sh into tables. Standard library only.

  bench_report.py report --raw DIR --out DIR --allocators glibc,jemalloc,...
      Reads DIR/r<round>_<allocator>.json (Google Benchmark JSON from bench_malloc), takes the
      median ns/op per benchmark per allocator over the rounds, and writes
        results.csv   one row per benchmark: median ns/op per allocator, min and max, ratios
        results.md    the markdown table (also printed on stdout)
        samples.csv   every sample: benchmark, allocator, round, ns/op
        plot.dat      whitespace-separated medians for tools/plot_bench.gp (NaN where missing)
      ns/op = real_time (in ns) / the "ops" user counter (objects allocated and freed per
      iteration); a benchmark without the counter counts one op per iteration.

  bench_report.py callgrind --csv FILE --pairs N --out DIR
      FILE has lines "allocator,I(N),I(2N)" (instructions collected inside run_pairs); writes
      callgrind.md and callgrind.csv with instructions per pair = (I(2N) - I(N)) / N.
"""

import argparse
import csv
import json
import math
import os
import re
import statistics
import sys

TIME_TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
RAW_NAME = re.compile(r"^r(\d+)_([A-Za-z0-9_.+-]+)\.json$")


def load_samples(raw_dir):
    """Returns ({(benchmark, allocator): [(round, ns_per_op), ...]}, [benchmark order], notes)."""
    samples = {}
    order = []
    notes = []
    for fname in sorted(os.listdir(raw_dir)):
        m = RAW_NAME.match(fname)
        if not m:
            continue
        rnd, alloc = int(m.group(1)), m.group(2)
        path = os.path.join(raw_dir, fname)
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            notes.append(f"skipped {fname}: {e}")
            continue
        for b in data.get("benchmarks", []):
            if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
                continue
            name = b.get("run_name") or b["name"]
            name = re.sub(r"/real_time$", "", name)
            ns = float(b["real_time"]) * TIME_TO_NS[b.get("time_unit", "ns")]
            ops = float(b.get("ops", 1.0)) or 1.0
            samples.setdefault((name, alloc), []).append((rnd, ns / ops))
            if name not in order:
                order.append(name)
    return samples, order, notes


def fmt_ns(v):
    if v is None or math.isnan(v):
        return "n/a"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(v):
    return "n/a" if v is None else f"{v:.2f}x"


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def cmd_report(args):
    allocs = [a for a in args.allocators.split(",") if a]
    samples, order, notes = load_samples(args.raw)
    if not order:
        print("bench_report: no benchmark results found in " + args.raw, file=sys.stderr)
        return 1
    # Allocators that produced nothing are still listed (as n/a) so the table shape is stable.
    med = {}
    lo = {}
    hi = {}
    for (name, alloc), vals in samples.items():
        v = [x for _, x in vals]
        med[(name, alloc)] = statistics.median(v)
        lo[(name, alloc)] = min(v)
        hi[(name, alloc)] = max(v)
    rounds = {a: len({r for (n, al), vals in samples.items() if al == a for r, _ in vals})
              for a in allocs}

    os.makedirs(args.out, exist_ok=True)

    # samples.csv
    with open(os.path.join(args.out, "samples.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["benchmark", "allocator", "round", "ns_per_op"])
        for name in order:
            for a in allocs:
                for rnd, v in sorted(samples.get((name, a), [])):
                    w.writerow([name, a, rnd, f"{v:.4f}"])

    has = lambda a: a in allocs  # noqa: E731
    r_je, r_gl = [], []
    rows = []
    for name in order:
        m = {a: med.get((name, a)) for a in allocs}
        s = m.get("slub")
        rj = ratio(s, m.get("jemalloc")) if has("slub") and has("jemalloc") else None
        rg = ratio(s, m.get("glibc")) if has("slub") and has("glibc") else None
        r_je.append(rj)
        r_gl.append(rg)
        rows.append((name, m, rj, rg))

    # results.csv
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        head = ["benchmark"]
        for a in allocs:
            head += [f"{a}_ns", f"{a}_min_ns", f"{a}_max_ns"]
        head += ["slub_over_jemalloc", "slub_over_glibc"]
        w.writerow(head)
        for name, m, rj, rg in rows:
            line = [name]
            for a in allocs:
                k = (name, a)
                line += ["" if k not in med else f"{med[k]:.4f}",
                         "" if k not in lo else f"{lo[k]:.4f}",
                         "" if k not in hi else f"{hi[k]:.4f}"]
            line += ["" if rj is None else f"{rj:.4f}", "" if rg is None else f"{rg:.4f}"]
            w.writerow(line)

    # plot.dat (gnuplot: first column label, then one column per allocator)
    with open(os.path.join(args.out, "plot.dat"), "w") as f:
        f.write("benchmark " + " ".join(allocs) + "\n")
        for name, m, _, _ in rows:
            vals = ["NaN" if m[a] is None else f"{m[a]:.4f}" for a in allocs]
            f.write(f'"{name}" ' + " ".join(vals) + "\n")

    # results.md
    lines = []
    lines.append(f"Median ns per operation (one malloc + one free) over the rounds; "
                 f"lower is better. Rounds per allocator: "
                 + ", ".join(f"{a} {rounds[a]}" for a in allocs) + ".")
    lines.append("")
    head = ["benchmark"] + allocs + ["slub/jemalloc", "slub/glibc"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for name, m, rj, rg in rows:
        cells = [name] + [fmt_ns(m[a]) for a in allocs] + [fmt_ratio(rj), fmt_ratio(rg)]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["geometric mean"] + [""] * len(allocs) + [fmt_ratio(geomean(r_je)),
                                                        fmt_ratio(geomean(r_gl))]
    lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Ratios above 1 mean slub is slower. Spread (max-min)/median per allocator, "
                 "worst benchmark: "
                 + ", ".join(
                     f"{a} {max(((hi[(n, a)] - lo[(n, a)]) / med[(n, a)] * 100 for n in order if (n, a) in med and med[(n, a)] > 0), default=0):.0f}%"
                     for a in allocs if any((n, a) in med for n in order)) + ".")
    missing = [a for a in allocs if not any((n, a) in med for n in order)]
    if missing:
        lines.append("")
        lines.append("No results for: " + ", ".join(missing) + ".")
    for n in notes:
        lines.append("")
        lines.append("Note: " + n)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    print(text, end="")
    return 0


def cmd_callgrind(args):
    rows = []
    with open(args.csv) as f:
        for rec in csv.reader(f):
            if len(rec) < 3 or rec[0] == "allocator":
                continue
            alloc = rec[0]
            try:
                i1, i2 = int(rec[1]), int(rec[2])
            except ValueError:
                rows.append((alloc, None, rec[1], rec[2]))
                continue
            rows.append((alloc, (i2 - i1) / args.pairs, i1, i2))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "callgrind.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["allocator", "instructions_per_pair", "I_N", "I_2N", "N"])
        for a, per, i1, i2 in rows:
            w.writerow([a, "" if per is None else f"{per:.2f}", i1, i2, args.pairs])
    lines = [f"Instructions per malloc({args.size}) + free pair, valgrind --tool=callgrind, "
             f"(I(2N) - I(N)) / N with N = {args.pairs}, counted inside run_pairs() "
             f"(includes the loop, the calls and the PLT jumps: 9 instructions).",
             "",
             "| allocator | instructions/pair | I(N) | I(2N) |",
             "|---|---:|---:|---:|"]
    for a, per, i1, i2 in rows:
        lines.append(f"| {a} | {'failed' if per is None else f'{per:.1f}'} | {i1} | {i2} |")
    if any(a == "slub-rseq" for a, *_ in rows):
        lines += ["",
                  "valgrind has no rseq: `slub` is its locked paths there (what a program gets "
                  "without rseq), `slub-rseq` the rseq sections it runs on a real CPU, emulated "
                  "(SLUB_RSEQ_EMULATE=1: the same instructions, no restart)."]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "callgrind.md"), "w") as f:
        f.write(text)
    print(text, end="")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report")
    r.add_argument("--raw", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--allocators", required=True)
    c = sub.add_parser("callgrind")
    c.add_argument("--csv", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--pairs", type=int, required=True)
    c.add_argument("--size", type=int, default=64)
    args = p.parse_args()
    return cmd_report(args) if args.cmd == "report" else cmd_callgrind(args)


if __name__ == "__main__":
    sys.exit(main())
