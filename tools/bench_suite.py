#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tools/bench_suite.py: the allocator benchmark suite (`tools/slub bench --suite [args]`).

  bench_suite.py [--quick] [--rounds N] [--threads 1,2,4] [--allocators a,b,...]
                 [--workloads w,x,...] [--out DIR] [--build DIR] [--timeout S] [--doc]
  bench_suite.py --kfence [MS] [the same options but --allocators]

Workloads (programs in bench/suite/, docs/BENCHMARKS.md describes each):
  larson, xmalloc, cache-thrash, cache-scratch, mstress, rfree   one run per thread count
  python3, sqlite3, g++                                          real programs, run once ("1")
  sort                                                           LC_ALL=C sort --parallel=N

Method: round r runs every (workload, threads) cell under every allocator once (glibc: no
LD_PRELOAD; jemalloc, mimalloc, tcmalloc: their Debian .so; slub: build/libslub.so); the
allocator that goes first moves one step along the list from one cell to the next and from one
round to the next. Each run is started by build/bench/suite/suite_spawn, which forks it, waits
with wait4 and reports wall time (fork to reaping) and ru_maxrss (the command's peak RSS, or
its biggest waited-for descendant's, e.g. cc1plus under g++). A child of this Python process
would inherit the runner's ~20 MB in its ru_maxrss; forked from the small helper it starts
from ~1 MB. The table reports the median over rounds of each and their ratios to
jemalloc. Every run must exit 0 and give the same result as the other allocators' runs (the
workload programs' checksum; the real programs' stdout or object file, by SHA-256); a run that
fails either way is reported loudly, its allocator is not run again on that cell, and the
exit status is 1.

Writes to --out (default out/suite): samples.csv (every run), results.csv (medians and
ratios), results.md (the tables, also printed), time_ratio.png and rss_ratio.png (gnuplot),
raw/ (logs). With --doc also docs/BENCHMARKS.md and docs/img/bench/*.png.

--kfence [MS]: the KFENCE overhead instead of the allocators. Two runners take their places,
"slub" (build/libslub.so, SLUB_KFENCE=0) and "slub-kfence" (the same, SLUB_KFENCE=MS, default
100), in the same interleaved rounds (5 by default); suite_spawn sets the variable in the
measured command only. The table gives per cell the ratio of the median times and the
difference of the median peak RSS in MiB, then the geomean ratio and the largest and mean
difference against the targets; kfence.json holds the same. With --doc it rewrites only the
"KFENCE overhead" section of docs/BENCHMARKS.md (a full --doc run keeps that section).
An allocator whose .so is missing is skipped with a note. Exit status: 0; 1 when a run failed
or gave a different result; 2 for a usage or setup error.
"""

import argparse
import csv
import hashlib
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = os.environ.get("SLUB_BENCH_LIBDIR", "/usr/lib/x86_64-linux-gnu")
ALLOCATORS = ["glibc", "jemalloc", "mimalloc", "tcmalloc", "slub"]
BASELINE = "jemalloc"
FLAG_RATIO = 1.2  # slub above this many times jemalloc is marked
# --kfence: slub's default sampling interval, and the targets for the suite at it.
KFENCE_DEFAULT_MS = 100
KFENCE_TIME_TARGET = 1.01      # geomean of the time ratios, slub-kfence / slub
KFENCE_RSS_TARGET_MIB = 2.0    # largest peak-RSS difference, slub-kfence - slub
KFENCE_HEADING = "## KFENCE overhead"

# name -> (kind, program or target, what it does). kind: "synthetic" runs per thread count,
# "real" once (threads column "1"), "real-threaded" per thread count (sort --parallel=N).
WORKLOADS = {
    "larson": ("synthetic", "suite_larson",
               "server simulation: per-thread arrays of 4000 live 16..1000 B blocks, random "
               "free+malloc, thread generations that inherit their predecessor's blocks"),
    "xmalloc": ("synthetic", "suite_xmalloc",
                "producer/consumer: half the threads malloc 16..512 B blocks, the other half "
                "free them (all frees remote); one thread alternates the roles"),
    "cache-thrash": ("synthetic", "suite_cache_thrash",
                     "active false sharing: malloc 8 B, write it 1000 times, free; per thread"),
    "cache-scratch": ("synthetic", "suite_cache_scratch",
                      "passive false sharing: main's neighbouring 8 B objects freed by the "
                      "threads, which then malloc, write 1000 times and free their own"),
    "mstress": ("synthetic", "suite_mstress",
                "mixed sizes (mostly small, some 1-64 KiB, rare up to 1 MiB) and lifetimes "
                "(short, medium, long across thread generations, passed between threads)"),
    "rfree": ("synthetic", "suite_rfree",
              "2M live 16..256 B blocks freed in a random permutation, twice"),
    "python3": ("real", "python3",
                "bench/suite/real_python.py: dicts, lists, strings, sets (pymalloc on, as "
                "shipped)"),
    "sort": ("real-threaded", "sort",
             "LC_ALL=C sort --parallel=N of a generated 20 MB text file"),
    "sqlite3": ("real", "sqlite3",
                "bench/suite/real_sqlite.sql on :memory:: 200k rows, two indexes, updates, "
                "grouping, join and ordering queries"),
    "g++": ("real", "g++",
            "g++ -std=c++20 -O1 -c bench/suite/gxx_input.cc (template-heavy, no linking)"),
}
SIZES = {  # default and --quick work sizes of the real programs
    "python_n": (80000, 3000),
    "sqlite_rows": (200000, 5000),
    "sort_lines": (480000, 24000),
}


def die(msg):
    print(f"bench_suite: {msg}", file=sys.stderr)
    sys.exit(2)


def note(msg):
    print(f"note: {msg}", file=sys.stderr)


# ---- allocators ----------------------------------------------------------------------------
def so_of(alloc, build):
    """The .so to preload for an allocator ('' for glibc). CMake writes the paths it found
    into build/bench/allocators.env (as tools/bench.sh reads them); the Debian paths are the
    fallback."""
    env_file = os.path.join(build, "bench", "allocators.env")
    if alloc != "glibc" and os.path.isfile(env_file):
        with open(env_file) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                if k == alloc and v:
                    return v
    return {"glibc": "", "jemalloc": f"{LIBDIR}/libjemalloc.so.2",
            "mimalloc": f"{LIBDIR}/libmimalloc.so.2",
            "tcmalloc": f"{LIBDIR}/libtcmalloc_minimal.so.4",
            "slub": os.path.join(build, "libslub.so")}[alloc]


def base_env(drop=()):
    """The runner's environment for a measured command, without LD_PRELOAD and drop."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and k not in drop}
    env.update(LC_ALL="C", PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    return env


# ---- workloads -----------------------------------------------------------------------------
class Suite:
    """Knows how to run each workload: inputs, argv, and what result to compare."""

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.build = args.build
        self.inputs = os.path.join(args.out, "inputs")
        self.raw = os.path.join(args.out, "raw")
        self.tmp = os.path.join(args.out, "tmp")
        self.spawn = os.path.join(args.build, "bench", "suite", "suite_spawn")
        self.drop_env = ()  # variables of the runner's environment the commands must not see

    def size(self, key):
        full, quick = SIZES[key]
        return quick if self.quick else full

    def prepare(self, workloads):
        """Builds missing programs, writes inputs; returns the workloads that can run."""
        os.makedirs(self.inputs, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)
        if not os.access(self.spawn, os.X_OK):
            build_target(self.build, "bench_suite")
        if not os.access(self.spawn, os.X_OK):
            die(f"{self.spawn} not found; configure and build first:\n"
                f"  cmake -S {ROOT} -B {self.build} -DSLUB_BUILD_BENCH=ON && "
                f"cmake --build {self.build} --target bench_suite")
        ok = []
        for w in workloads:
            kind, prog, _ = WORKLOADS[w]
            if kind == "synthetic":
                path = os.path.join(self.build, "bench", "suite", prog)
                if not os.access(path, os.X_OK):
                    build_target(self.build, "bench_suite")
                if not os.access(path, os.X_OK):
                    die(f"{path} not found; configure and build first:\n"
                        f"  cmake -S {ROOT} -B {self.build} -DSLUB_BUILD_BENCH=ON && "
                        f"cmake --build {self.build} --target bench_suite")
            elif not shutil.which(prog):
                note(f"skipping {w}: {prog} is not installed")
                continue
            ok.append(w)
        if "sort" in ok:
            self.write_sort_input(os.path.join(self.inputs, "sort.txt"), self.size("sort_lines"))
        if "sqlite3" in ok:
            with open(os.path.join(ROOT, "bench", "suite", "real_sqlite.sql")) as f:
                sql = f.read().replace("@ROWS@", str(self.size("sqlite_rows")))
            with open(os.path.join(self.inputs, "sqlite.sql"), "w") as f:
                f.write(sql)
        if "g++" in ok:
            # A fixed path: the source's name goes into the object file.
            shutil.copyfile(os.path.join(ROOT, "bench", "suite", "gxx_input.cc"),
                            os.path.join(self.inputs, "gxx_input.cc"))
        return ok

    @staticmethod
    def write_sort_input(path, lines):
        rng = random.Random(12345)
        letters = "abcdefghijklmnopqrstuvwxyz"
        with open(path, "w") as f:
            for i in range(lines):
                word = "".join(rng.choice(letters) for _ in range(rng.randint(3, 12)))
                f.write(f"{rng.randrange(10**10):010d} {word} {rng.getrandbits(32):08x} "
                        f"line-{i}\n")

    def command(self, w, threads, tag):
        """(argv, stdin path or None, file whose hash is the result or None)."""
        kind, prog, _ = WORKLOADS[w]
        if kind == "synthetic":
            argv = [os.path.join(self.build, "bench", "suite", prog), "--threads", str(threads)]
            if self.quick:
                argv.append("--quick")
            return argv, None, None
        if w == "python3":
            return ([shutil.which("python3"), os.path.join(ROOT, "bench", "suite",
                                                           "real_python.py"),
                     str(self.size("python_n"))], None, None)
        if w == "sort":
            return ([shutil.which("sort"), f"--parallel={threads}",
                     os.path.join(self.inputs, "sort.txt")], None, None)
        if w == "sqlite3":
            return [shutil.which("sqlite3"), ":memory:"], os.path.join(self.inputs,
                                                                       "sqlite.sql"), None
        if w == "g++":
            obj = os.path.join(self.tmp, f"gxx.{tag}.o")
            argv = [shutil.which("g++"), "-std=c++20", "-O1", "-frandom-seed=slub", "-c",
                    os.path.join(self.inputs, "gxx_input.cc"), "-o", obj]
            if self.quick:
                argv[2:3] = ["-O0", "-DSUITE_QUICK"]
            return argv, None, obj
        raise KeyError(w)


def build_target(build, target):
    if os.path.isfile(os.path.join(build, "CMakeCache.txt")):
        print(f"bench_suite: building {target} in {build}", file=sys.stderr)
        subprocess.run(["cmake", "--build", build, "--target", target, "-j2"],
                       stdout=sys.stderr, check=False)


def shown_path(path):
    """A path relative to the repository when it is inside it, else absolute."""
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


RESULT_RE = re.compile(rb"^RESULT .*checksum=([0-9a-f]+)", re.M)


class Run:
    __slots__ = ("wall", "maxrss_kib", "status", "result", "error")


def run_once(suite, w, threads, alloc, so, env, rnd, timeout):
    """Runs one sample through suite_spawn; returns a Run (status 0 and a result, or an
    error). env: the variant's variables, which suite_spawn sets in the measured command
    only."""
    tag = f"{w}.t{threads}.{alloc}.r{rnd}"
    argv, stdin_path, result_file = suite.command(w, threads, tag)
    out_path = os.path.join(suite.tmp if WORKLOADS[w][0] != "synthetic" else suite.raw,
                            tag + ".out")
    err_path = os.path.join(suite.raw, tag + ".err")
    stat_path = os.path.join(suite.tmp, tag + ".stat")
    for path in (result_file, stat_path):
        if path and os.path.exists(path):
            os.unlink(path)
    r = Run()
    r.result = r.error = None
    r.wall, r.maxrss_kib, r.status = 0.0, 0, None
    with open(out_path, "wb") as out, open(err_path, "wb") as err, \
            open(stdin_path or os.devnull, "rb") as inp:
        env_args = [f"--env={k}={v}" for k, v in env.items()]
        p = subprocess.Popen([suite.spawn] + env_args + [stat_path, so or "-"] + argv,
                             stdin=inp, stdout=out, stderr=err, env=base_env(suite.drop_env),
                             cwd=suite.tmp, start_new_session=True)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            r.error = f"timed out after {timeout:g} s"
    stat = {}
    if os.path.exists(stat_path):
        with open(stat_path) as f:
            stat = dict(kv.split("=", 1) for kv in f.read().split())
        os.unlink(stat_path)
    if "status" in stat:
        raw = int(stat["status"])
        r.status = os.waitstatus_to_exitcode(raw)
        r.maxrss_kib = int(stat["maxrss_kib"])
        r.wall = float(stat["wall_s"])
    if r.error:
        pass
    elif r.status is None:
        r.error = f"suite_spawn failed (exit status {p.returncode})"
    elif r.status < 0:
        r.error = f"killed by signal {-r.status} ({signal.Signals(-r.status).name})"
    elif r.status != 0:
        r.error = f"exit status {r.status}"
    elif WORKLOADS[w][0] == "synthetic":
        with open(out_path, "rb") as f:
            m = RESULT_RE.search(f.read())
        if m:
            r.result = m.group(1).decode()
        else:
            r.error = "no RESULT line with a checksum"
    elif result_file:
        if os.path.exists(result_file):
            r.result = sha256_file(result_file)
        else:
            r.error = f"did not write {os.path.basename(result_file)}"
    else:
        r.result = sha256_file(out_path)
    if WORKLOADS[w][0] != "synthetic":
        os.unlink(out_path)  # sort's output is 20 MB; keep only the hash
    if result_file and os.path.exists(result_file):
        os.unlink(result_file)
    if os.path.getsize(err_path) == 0 and not r.error:
        os.unlink(err_path)
    if r.error:
        r.error += f"; stderr in {shown_path(err_path)}; reproduce: " + \
            "".join(f"{k}={shlex.quote(v)} " for k, v in env.items()) + \
            (f"LD_PRELOAD={so} " if so else "") + shlex.join(argv) + \
            (f" < {stdin_path}" if stdin_path else "")
    return r


# ---- statistics and tables -----------------------------------------------------------------
def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def ratio(a, b):
    return None if a is None or b is None or b <= 0 else a / b


def fmt_ratio(v, flag=False):
    if v is None:
        return "n/a"
    s = f"{v:.2f}"
    return f"**{s}** !" if flag and v > FLAG_RATIO else s


def md_table(head, rows, align=None):
    align = align or (["---"] * 2 + ["---:"] * (len(head) - 2))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class Results:
    def __init__(self, cells, allocs):
        self.cells = cells    # [(workload, threads)]
        self.allocs = allocs  # the allocators that ran
        self.samples = {}     # (cell, alloc) -> [(round, Run)]
        self.failed = {}      # (cell, alloc) -> message

    def add(self, cell, alloc, rnd, run):
        self.samples.setdefault((cell, alloc), []).append((rnd, run))

    def ok_runs(self, cell, alloc):
        if (cell, alloc) in self.failed:
            return []
        return [r for _, r in self.samples.get((cell, alloc), []) if not r.error]

    def median(self, cell, alloc, what):
        runs = self.ok_runs(cell, alloc)
        if not runs:
            return None
        return statistics.median(r.wall if what == "time" else r.maxrss_kib for r in runs)

    def check_results(self):
        """Every allocator must give the same result on a cell, in every round. The reference
        is the result most allocators agree on; a different one fails its allocator."""
        msgs = []
        for cell in self.cells:
            per_alloc = {}
            for a in self.allocs:
                vals = {r.result for r in self.ok_runs(cell, a)}
                if len(vals) > 1:
                    self.failed[(cell, a)] = f"results differ between rounds: {sorted(vals)}"
                    msgs.append(f"{cell_name(cell)} {a}: " + self.failed[(cell, a)])
                elif vals:
                    per_alloc[a] = vals.pop()
            if not per_alloc:
                continue
            votes = {}
            for v in per_alloc.values():
                votes[v] = votes.get(v, 0) + 1
            ref = max(votes, key=lambda v: (votes[v], v == per_alloc.get("glibc")))
            for a, v in per_alloc.items():
                if v != ref:
                    agree = [b for b, x in per_alloc.items() if x == ref]
                    self.failed[(cell, a)] = (f"result {v[:16]} differs from {ref[:16]} of "
                                              f"{', '.join(agree)}")
                    msgs.append(f"{cell_name(cell)} {a}: " + self.failed[(cell, a)])
        return msgs


def cell_name(cell):
    w, t = cell
    return f"{w}/{t}"


def build_tables(res):
    """Returns (markdown text, rows for results.csv, plot data, summary dict)."""
    allocs = res.allocs
    others = [a for a in allocs if a != BASELINE]
    has_base = BASELINE in allocs
    med = {(c, a, k): res.median(c, a, k) for c in res.cells for a in allocs
           for k in ("time", "rss")}
    rat = {(c, a, k): ratio(med[(c, a, k)], med[(c, BASELINE, k)]) if has_base else None
           for c in res.cells for a in allocs for k in ("time", "rss")}

    def groups():
        yield "all", res.cells
        for t in sorted({t for _, t in res.cells}):
            yield f"{t} thread{'s' if t > 1 else ''}", [c for c in res.cells if c[1] == t]
        yield "synthetic", [c for c in res.cells if WORKLOADS[c[0]][0] == "synthetic"]
        yield "real programs", [c for c in res.cells if WORKLOADS[c[0]][0] != "synthetic"]

    gm = {}
    for g, cells in groups():
        for a in allocs:
            for k in ("time", "rss"):
                gm[(g, a, k)] = geomean([rat[(c, a, k)] for c in cells])
    group_names = [g for g, cells in groups() if cells]

    def cell_ratio(c, a, k, flag=False):
        if (c, a) in res.failed:
            return "FAILED"
        if has_base and (c, BASELINE) in res.failed:
            return "n/a (jemalloc failed)"
        return fmt_ratio(rat[(c, a, k)], flag)

    out = []
    if "slub" in allocs and has_base:
        out.append("### slub / jemalloc\n")
        out.append("Median wall time and median peak RSS of slub divided by jemalloc's; below 1 "
                   f"is better for slub. **Bold !** marks slub above {FLAG_RATIO}x jemalloc.\n")
        rows = []
        for c in res.cells:
            flags = [k for k in ("time", "rss") if (rat[(c, "slub", k)] or 0) > FLAG_RATIO]
            rows.append([c[0], c[1], cell_ratio(c, "slub", "time", True),
                         cell_ratio(c, "slub", "rss", True),
                         ", ".join(flags) if flags else ""])
        for g in group_names:
            rows.append([f"*geomean, {g}*", "", fmt_ratio(gm[(g, "slub", "time")]),
                         fmt_ratio(gm[(g, "slub", "rss")]), ""])
        out.append(md_table(["workload", "threads", "time", "peak RSS", f"> {FLAG_RATIO}x"],
                            rows, ["---", "---:", "---:", "---:", "---"]))
        out.append("")
    for k, title, unit in (("time", "Wall time", "s"), ("rss", "Peak RSS", "MiB")):
        if not has_base:
            break  # every ratio would be n/a
        out.append(f"### {title}: ratio to jemalloc\n")
        base_col = f"jemalloc ({unit})"
        rows = []
        for c in res.cells:
            b = med[(c, BASELINE, k)] if has_base else None
            babs = "n/a" if b is None else (f"{b:.3f}" if k == "time" else f"{b / 1024:.1f}")
            rows.append([c[0], c[1], babs] + [cell_ratio(c, a, k, a == "slub") for a in others])
        for g in group_names:
            rows.append([f"*geomean, {g}*", "", ""] + [fmt_ratio(gm[(g, a, k)]) for a in others])
        out.append(md_table(["workload", "threads", base_col] + others, rows))
        out.append("")
    def spread_of(k):
        """Median over every (cell, allocator) of (max - min) / median of its rounds."""
        xs = []
        for c in res.cells:
            for a in allocs:
                vals = [r.wall if k == "time" else r.maxrss_kib for r in res.ok_runs(c, a)]
                if len(vals) > 1 and statistics.median(vals) > 0:
                    xs.append((max(vals) - min(vals)) / statistics.median(vals))
        return statistics.median(xs) if xs else None

    spread = []
    for a in allocs:
        sp = []
        for c in res.cells:
            runs = res.ok_runs(c, a)
            m = med[(c, a, "time")]
            if len(runs) > 1 and m:
                sp.append(((max(r.wall for r in runs) - min(r.wall for r in runs)) / m, c))
        if sp:
            worst = max(sp)
            spread.append(f"{a} {statistics.median(x for x, _ in sp) * 100:.0f}% "
                          f"(worst {worst[0] * 100:.0f}%, {cell_name(worst[1])})")
    if spread:
        out.append("Round-to-round spread of the time, (max - min) / median of a cell's rounds, "
                   "median over the cells: " + "; ".join(spread) + ".\n")
    out.append("### Medians\n")
    rows = []
    for c in res.cells:
        row = [c[0], c[1]]
        for a in allocs:
            t, m = med[(c, a, "time")], med[(c, a, "rss")]
            if (c, a) in res.failed:
                row.append("FAILED")
            elif t is None:
                row.append("n/a")
            else:
                row.append(f"{t:.3f} s, {m / 1024:.1f} MiB")
        rows.append(row)
    out.append(md_table(["workload", "threads"] + allocs, rows))
    out.append("")

    csv_rows = []
    for c in res.cells:
        for a in allocs:
            runs = res.ok_runs(c, a)
            csv_rows.append({
                "workload": c[0], "threads": c[1], "allocator": a, "runs": len(runs),
                "time_s": med[(c, a, "time")], "time_min_s": min((r.wall for r in runs),
                                                                 default=None),
                "time_max_s": max((r.wall for r in runs), default=None),
                "maxrss_kib": med[(c, a, "rss")],
                "time_ratio": rat[(c, a, "time")], "rss_ratio": rat[(c, a, "rss")],
                "failed": res.failed.get((c, a), "")})
    plot = {k: [(cell_name(c), [rat[(c, a, k)] for a in others]) for c in res.cells]
            for k in ("time", "rss")}
    summary = {"med": med, "rat": rat, "gm": gm, "groups": group_names, "others": others,
               "spread": {k: spread_of(k) for k in ("time", "rss")}}
    return "\n".join(out) + "\n", csv_rows, plot, summary


# ---- KFENCE overhead (--kfence) -------------------------------------------------------------
def kfence_variants(ms):
    """The two runners of --kfence: the same libslub.so with KFENCE off and at MS."""
    return {"slub": ("slub", {"SLUB_KFENCE": "0"}),
            "slub-kfence": ("slub", {"SLUB_KFENCE": str(ms)})}


def fmt_mib_diff(v):
    """A signed difference in MiB; one that rounds to zero is +0.0, never -0.0."""
    if v is None:
        return "n/a"
    return f"{v:+.1f}" if round(v, 1) != 0 else "+0.0"


def kfence_report(res, args, runners, failures, spread_time):
    """The KFENCE overhead table (markdown) and the dict for kfence.json. Per cell: the ratio
    of the median wall times, slub-kfence / slub; the median of the same-round ratios (the two
    runs of one round are close in time, so a load that drifts over the run cancels out); and
    the difference of the median peak RSS in MiB. Then the geomeans of the ratios and the
    largest and mean RSS difference, against the targets."""
    base, kf = "slub", "slub-kfence"
    cells, rows = [], []
    for c in res.cells:
        failed = (c, base) in res.failed or (c, kf) in res.failed
        med = {(a, k): None if failed else res.median(c, a, k) for a in (base, kf)
               for k in ("time", "rss")}
        by_round = {a: {rnd: r for rnd, r in res.samples.get((c, a), []) if not r.error}
                    for a in (base, kf)}
        same_round = [] if failed else [
            by_round[kf][rnd].wall / by_round[base][rnd].wall for rnd in by_round[base]
            if rnd in by_round[kf] and by_round[base][rnd].wall > 0]
        cell = {
            "workload": c[0], "threads": c[1], "failed": failed,
            "runs": {a: len(res.ok_runs(c, a)) for a in (base, kf)},
            "time_s": {a: med[(a, "time")] for a in (base, kf)},
            "maxrss_mib": {a: None if med[(a, "rss")] is None else med[(a, "rss")] / 1024
                           for a in (base, kf)},
            "time_ratio": ratio(med[(kf, "time")], med[(base, "time")]),
            "same_round_time_ratio": statistics.median(same_round) if same_round else None,
        }
        m = cell["maxrss_mib"]
        cell["rss_diff_mib"] = None if None in m.values() else m[kf] - m[base]
        cells.append(cell)
        t, mb = cell["time_s"], cell["maxrss_mib"]
        f3 = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        f1 = lambda v: "n/a" if v is None else f"{v:.1f}"  # noqa: E731
        rows.append([c[0], c[1], f3(t[base]), f3(t[kf]),
                     "FAILED" if failed else f3(cell["time_ratio"]),
                     "FAILED" if failed else f3(cell["same_round_time_ratio"]),
                     f1(mb[base]), f1(mb[kf]),
                     "FAILED" if failed else fmt_mib_diff(cell["rss_diff_mib"])])
    diffs = [(x["rss_diff_mib"], f"{x['workload']}/{x['threads']}") for x in cells
             if x["rss_diff_mib"] is not None]
    largest = max(diffs) if diffs else (None, None)
    mean_diff = statistics.mean(d for d, _ in diffs) if diffs else None
    gm_time = geomean([x["time_ratio"] for x in cells])
    n_gm = sum(1 for x in cells if x["time_ratio"])
    gm_same = geomean([x["same_round_time_ratio"] for x in cells])
    spread = spread_time  # over the cells and both variants, from build_tables
    time_ok = gm_time is not None and gm_time <= KFENCE_TIME_TARGET
    rss_ok = largest[0] is not None and largest[0] <= KFENCE_RSS_TARGET_MIB
    verdict = lambda ok: "within the target" if ok else "**over the target**"  # noqa: E731
    env = {a: " ".join(f"{k}={v}" for k, v in runners[a][1].items()) for a in (base, kf)}

    out = [f"### KFENCE overhead: slub-kfence (`{env[kf]}`) against slub (`{env[base]}`)\n"]
    rounds = f"{args.rounds} round{'s' if args.rounds > 1 else ''}"
    out.append(f"{rounds}, the two interleaved. Time ratio: slub-kfence's median "
               "wall time / slub's (above 1: slower with KFENCE); same-round: the median over "
               "the rounds of the ratio of one round's two runs; RSS diff: slub-kfence's median "
               "peak RSS minus slub's.\n")
    out.append(md_table(["workload", "threads", "slub (s)", "slub-kfence (s)", "time ratio",
                         "same-round", "slub (MiB)", "slub-kfence (MiB)", "RSS diff (MiB)"],
                        rows, ["---", "---:"] + ["---:"] * 7))
    out.append("")
    cells_word = "cell" if n_gm == 1 else "cells"
    fr = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    fm = lambda v: fmt_mib_diff(v) + ("" if v is None else " MiB")  # noqa: E731
    out.append(f"- **Geomean time ratio** over {n_gm} {cells_word}: {fr(gm_time)} (same-round: "
               f"{fr(gm_same)}); target <= {KFENCE_TIME_TARGET:.2f}: {verdict(time_ok)}.")
    out.append(f"- **Peak RSS difference**: largest {fm(largest[0])}"
               f"{f' ({largest[1]})' if largest[1] else ''}, mean {fm(mean_diff)}; target "
               f"<= {KFENCE_RSS_TARGET_MIB:g} MiB: {verdict(rss_ok)}.")
    if spread is not None:
        out.append(f"- Round-to-round spread of the time, (max - min) / median of a cell's "
                   f"rounds, median over cells and variants: {spread * 100:.0f}%; one cell's "
                   "ratio that differs from 1 by less than that is noise.")
    if args.kfence == 0:
        out.append("- Both variants ran with KFENCE off (`--kfence 0`): every difference above "
                   "is noise, and shows how far the method can be trusted on this machine.")
    if failures:
        out.append(f"- {len(failures)} failure(s), see the end of the output: those cells are "
                   "left out of the geomean.")
    out.append("")
    summary = {
        "interval_ms": args.kfence, "rounds": args.rounds, "quick": args.quick,
        "variants": {a: runners[a][1] for a in (base, kf)},
        "cells": cells,
        "geomean_time_ratio": gm_time, "geomean_same_round_time_ratio": gm_same,
        "geomean_cells": n_gm,
        "rss_diff_mib": {"largest": largest[0], "largest_cell": largest[1],
                         "mean": mean_diff},
        "time_spread": spread,
        "targets": {"time_ratio": KFENCE_TIME_TARGET, "rss_diff_mib": KFENCE_RSS_TARGET_MIB,
                    "time_met": time_ok, "rss_met": rss_ok},
        "failures": failures,
    }
    return "\n".join(out) + "\n", summary


def kfence_section(run_text=None):
    """docs/BENCHMARKS.md's KFENCE overhead section: how to run and read it, then run_text
    (the results of one --kfence --doc run) or a placeholder."""
    L = [KFENCE_HEADING + "\n"]
    L.append("KFENCE (sampled guarded allocations, `SLUB_KFENCE=<ms>`) at its default interval "
             "against KFENCE off, on the cells of the suite above. `slub` runs "
             f"`build/libslub.so` with `SLUB_KFENCE=0`, `slub-kfence` the same library with "
             f"`SLUB_KFENCE={KFENCE_DEFAULT_MS}`; the two are interleaved as the allocators "
             "are, and `suite_spawn` sets the variable in the measured command only. The "
             f"targets: a geomean time ratio within 1% (<= {KFENCE_TIME_TARGET:.2f}) and peak "
             f"RSS within {KFENCE_RSS_TARGET_MIB:g} MiB.\n")
    L.append("```sh\ntools/slub bench --suite --kfence --doc\n```\n")
    L.append("5 rounds unless `--rounds` says otherwise, each cell twice per round: about 3 "
             "to 5 minutes on the 2-core VM (`--kfence MS` for another interval; `--kfence 0` "
             "runs KFENCE off twice, which shows the noise floor of the method). "
             "It prints, and writes to `out/suite/results.md`, one row per cell: each "
             "variant's median wall time and peak RSS; the **time ratio**, slub-kfence's "
             "median over slub's (above 1: slower with KFENCE); the **same-round** ratio, the "
             "median over the rounds of the ratio of one round's two runs, which a load "
             "drifting over the run does not move; and the **RSS diff**, slub-kfence's median "
             "peak RSS minus slub's, in MiB. Below the table: the geomean of both ratios over "
             "all cells, the largest and the mean RSS difference, each against its target, "
             "and the round-to-round spread; one cell's ratio closer to 1 than that spread is "
             "noise, while the geomean over all cells is steadier. `out/suite/kfence.json` "
             "holds the same numbers, `out/suite/samples.csv` every run. `--doc` replaces "
             "this section only; a full `--doc` run keeps it.\n")
    L.append("A 1% target is below the round-to-round spread of one cell on a busy 2-core VM: "
             "run it when the machine is quiet, with `--kfence 0` just before; when that "
             "identical pair's geomean is further than 1% from 1, so is the uncertainty of "
             "the KFENCE run, and more `--rounds` are needed.\n")
    L.append(run_text if run_text else "(numbers: see the issue-20 run)\n")
    return "\n".join(L)


def doc_section_span(text, heading):
    """(start, end) of the section under heading (up to the next "## " heading), or None."""
    start = text.find("\n" + heading + "\n")
    if start < 0:
        return None
    nxt = text.find("\n## ", start + 1)
    return start + 1, (nxt + 1 if nxt >= 0 else len(text))


def with_section(text, heading, section, before="## Reproducing"):
    """text with its section under heading replaced by section, or section inserted before
    the heading `before` (at the end when that is missing too)."""
    span = doc_section_span(text, heading)
    if span is None:
        at = text.find("\n" + before + "\n")
        span = (at + 1, at + 1) if at >= 0 else (len(text), len(text))
    return text[:span[0]] + section.rstrip("\n") + "\n\n" + text[span[1]:]


def write_kfence_doc(args, kf_text, started, elapsed, load):
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        die(f"cannot read {path}: {e}")
    run = (f"Run: `{args.command_line}`, started {started}, {elapsed / 60:.1f} minutes, load "
           f"average {load[0]:.1f} at the start and {load[1]:.1f} at the end; slub at commit "
           f"{machine_info()['commit']}.\n\n" + kf_text)
    with open(path, "w") as f:
        f.write(with_section(text, KFENCE_HEADING, kfence_section(run)))
    print("bench_suite: wrote the KFENCE overhead section of docs/BENCHMARKS.md",
          file=sys.stderr)


def fmt_csv(v):
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, float) else v


def write_plot(out_dir, plot, others):
    """Writes <k>_ratio.dat and draws <k>_ratio.png with gnuplot; returns the PNGs made."""
    gp = os.path.join(ROOT, "tools", "plot_bench_suite.gp")
    if not shutil.which("gnuplot"):
        note("gnuplot not found (apt-get install gnuplot-nox); no charts")
        return []
    pngs = []
    for k, what in (("time", "wall time"), ("rss", "peak RSS")):
        if not any(v is not None for _, vals in plot[k] for v in vals):
            continue
        dat = os.path.join(out_dir, f"{k}_ratio.dat")
        with open(dat, "w") as f:
            f.write("cell " + " ".join(others) + "\n")
            for name, vals in plot[k]:
                f.write(f'"{name}" ' + " ".join("NaN" if v is None else f"{v:.4f}"
                                                for v in vals) + "\n")
        png = os.path.join(out_dir, f"{k}_ratio.png")
        title = f"{what}, median over rounds, ratio to jemalloc (below 1 = less than jemalloc)"
        cmd = ["gnuplot", "-e", f"datafile='{dat}'; outfile='{png}'; ncols={len(others)}; "
               f"charttitle='{title}'", gp]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode == 0:
            pngs.append(png)
        else:
            note(f"gnuplot failed for {k}: {p.stderr.strip()[:500]}")
    return pngs


# ---- the document --------------------------------------------------------------------------
def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False,
                              cwd=ROOT).stdout.strip()
    except OSError:
        return ""


def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    distro = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    pkgs = sh(["dpkg-query", "-W", "-f=${Package} ${Version}\n", "libjemalloc2",
               "libmimalloc2.0", "libtcmalloc-minimal4", "libc6", "python3", "sqlite3",
               "coreutils", "g++"])
    return {
        "cpu": cpu, "cores": os.cpu_count(), "mem": mem, "distro": distro,
        "kernel": platform.release(),
        "gcc": sh(["g++", "-dumpfullversion"]),
        "packages": ", ".join(pkgs.splitlines()),
        "commit": sh(["git", "rev-parse", "--short", "HEAD"]) +
        (" (with uncommitted changes)" if sh(["git", "status", "--porcelain", "--", "src",
                                              "include"]) else ""),
    }


def wins_losses(res, summary):
    """Factual lines: where slub is faster or slower than jemalloc, by how much."""
    rat = summary["rat"]
    lines = []
    for k, what in (("time", "time"), ("rss", "peak RSS")):
        vals = [(c, rat[(c, "slub", k)]) for c in res.cells if rat[(c, "slub", k)] is not None]
        if not vals:
            continue
        better = sorted([x for x in vals if x[1] < 0.95], key=lambda x: x[1])
        worse = sorted([x for x in vals if x[1] > 1.05], key=lambda x: -x[1])
        even = [x for x in vals if 0.95 <= x[1] <= 1.05]
        fmt = lambda xs: ", ".join(f"{cell_name(c)} {v:.2f}" for c, v in xs) or "none"  # noqa
        lines.append(f"- **{what}, slub lower than jemalloc by more than 5%** "
                     f"({len(better)} of {len(vals)}): {fmt(better)}.")
        lines.append(f"- **{what}, slub higher than jemalloc by more than 5%** "
                     f"({len(worse)} of {len(vals)}): {fmt(worse)}.")
        lines.append(f"- **{what}, within 5%** ({len(even)} of {len(vals)}): {fmt(even)}.")
    # Rank of slub among all allocators, per cell, on time.
    first, last = [], []
    for c in res.cells:
        ts = {a: summary["med"][(c, a, "time")] for a in res.allocs}
        ts = {a: v for a, v in ts.items() if v is not None}
        if "slub" not in ts or len(ts) < 2:
            continue
        order = sorted(ts, key=ts.get)
        if order[0] == "slub":
            first.append(cell_name(c))
        elif order[-1] == "slub":
            last.append(cell_name(c))
    lines.append(f"- **Fastest of all {len(res.allocs)} allocators**: "
                 f"{', '.join(first) or 'none'}; **slowest of all**: {', '.join(last) or 'none'}.")
    return lines


def write_doc(args, res, tables, summary, pngs, info, started, elapsed, load, failures):
    doc_dir = os.path.join(ROOT, "docs")
    img_dir = os.path.join(doc_dir, "img", "bench")
    os.makedirs(img_dir, exist_ok=True)
    rel_imgs = []
    for p in pngs:
        dst = os.path.join(img_dir, os.path.basename(p))
        shutil.copyfile(p, dst)
        rel_imgs.append(os.path.relpath(dst, doc_dir))
    gm = summary["gm"]
    g = lambda a, k: fmt_ratio(gm.get(("all", a, k)))  # noqa: E731
    L = []
    L.append("# Allocator benchmark suite\n")
    L.append("Workloads modelled on the well-known allocator benchmarks (Larson, xmalloc-test, "
             "Hoard's cache-thrash and cache-scratch, mimalloc-bench's mstress, random-order "
             "frees) and four real programs, run under glibc, jemalloc, mimalloc, tcmalloc and "
             "slub, with wall time and peak RSS compared to jemalloc. This file is written by "
             "`tools/slub bench --suite --doc` (`tools/bench_suite.py`); every number below "
             "comes from the run it describes.\n")
    sp = summary["spread"]
    pct = lambda v: "n/a" if v is None else f"{v * 100:.0f}%"  # noqa: E731
    noise = (f"In this run the rounds of one cell differed by a median of {pct(sp['time'])} in "
             f"time and {pct(sp['rss'])} in peak RSS ((max - min) / median over the rounds, "
             "all cells and allocators)")
    L.append("> **Caveat.** This run was on a small, noisy 2-core virtual machine (load average "
             f"{load[0]:.1f} at the start, {load[1]:.1f} at the end). {noise}; a time "
             f"difference smaller than that is not meaningful, and the medians of "
             f"{args.rounds} rounds only damp it. The same command on an idle machine would "
             "give other numbers.\n")
    L.append("## Command\n")
    L.append("```sh\n" + args.command_line + "\n```\n")
    L.append(f"Started {started}; the runs took {elapsed / 60:.1f} minutes "
             f"({args.rounds} rounds, threads {','.join(map(str, args.thread_list))}, "
             f"allocators {', '.join(res.allocs)}).\n")
    L.append("## Machine\n")
    L.append(f"- CPU: {info['cpu']}, {info['cores']} cores visible; memory {info['mem']}")
    L.append(f"- OS: {info['distro']}, kernel {info['kernel']}; g++ {info['gcc']}")
    L.append(f"- Packages: {info['packages']}")
    L.append(f"- slub: commit {info['commit']}, Release build, default settings\n")
    L.append("## Method\n")
    L.append("- Each (workload, threads) cell runs under every allocator once per round; the "
             "allocator that runs first moves one place along the list from one cell to the "
             "next and from one round to the next, so no allocator always runs first or last. "
             "glibc runs without `LD_PRELOAD`; the others preload their Debian `.so` "
             "(`libjemalloc.so.2`, `libmimalloc.so.2`, `libtcmalloc_minimal.so.4`) or "
             "`build/libslub.so`.")
    L.append("- Time is the wall time of the whole process (fork to reaping, including start-up "
             "and exit). Peak RSS is `ru_maxrss` from `wait4`; for g++ that is its largest "
             "process (cc1plus). Both are taken by `build/bench/suite/suite_spawn`, a small C "
             "helper that forks and waits for each run: Linux counts the address space a "
             "process had before `execve` in its `ru_maxrss`, so a child forked straight from "
             "the Python runner would never show less than the runner's ~20 MiB; forked from "
             "the helper it starts from about 1 MiB, the same for every allocator. Each table "
             "shows the median of the rounds, as a ratio to jemalloc's median: below 1 is "
             "faster or smaller than jemalloc.")
    L.append("- The synthetic workloads have a fixed total amount of work that the threads "
             "share, so with 2 cores a perfect allocator takes about the same time at 2 and 4 "
             "threads as the 1-thread time halved. Each program writes a value into every "
             "block and checks it before the free; the sum is printed as a checksum that must "
             "be the same under every allocator. The real programs' output (stdout, or the "
             "object file for g++) must be byte-identical under every allocator (SHA-256).")
    L.append("- Geometric means are over the cells of a group; the real programs that do not "
             "take a thread count (python3, sqlite3, g++) count as 1 thread.\n")
    L.append("| workload | what it does |")
    L.append("|---|---|")
    for w in dict.fromkeys(c[0] for c in res.cells):
        L.append(f"| {w} | {WORKLOADS[w][2]} |")
    L.append("")
    L.append("## Results\n")
    if "slub" in res.allocs and BASELINE in res.allocs:
        L.append(f"Geometric mean over all {len(res.cells)} cells, ratio to jemalloc: "
                 + "; ".join(f"{a} time {g(a, 'time')}, RSS {g(a, 'rss')}"
                             for a in summary["others"]) + ".\n")
    L.append(tables)
    for p in rel_imgs:
        L.append(f"![{os.path.basename(p)}]({p})\n")
    if "slub" in res.allocs and BASELINE in res.allocs:
        L.append("## Where slub wins and loses against jemalloc\n")
        L.append("From the medians above, with a 5% margin. Time differences below the "
                 f"round-to-round spread of this run ({pct(sp['time'])}, see the caveat) may be "
                 "noise.\n")
        L += wins_losses(res, summary)
        L.append("")
    if failures:
        L.append("## Failures\n")
        L += [f"- {m}" for m in failures]
        L.append("")
    # The KFENCE overhead section comes from its own run (--kfence --doc): keep it.
    old = ""
    if os.path.isfile(os.path.join(doc_dir, "BENCHMARKS.md")):
        with open(os.path.join(doc_dir, "BENCHMARKS.md")) as f:
            old = f.read()
    span = doc_section_span(old, KFENCE_HEADING)
    L.append(old[span[0]:span[1]].rstrip("\n") + "\n" if span else kfence_section())
    L.append("## Reproducing\n")
    L.append("`tools/slub bench --suite` (3 rounds, threads 1,2,4, all allocators; results "
             "in `out/suite`), `--quick` for a tiny version, `--doc` to rewrite this file and "
             "`docs/img/bench/`. `--workloads`, `--allocators`, `--threads` and `--rounds` "
             "select a subset; `--kfence` measures the KFENCE overhead (above). Raw samples: "
             "`out/suite/samples.csv`.")
    with open(os.path.join(doc_dir, "BENCHMARKS.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print(f"bench_suite: wrote docs/BENCHMARKS.md and {len(rel_imgs)} charts in "
          "docs/img/bench", file=sys.stderr)


# ---- main ----------------------------------------------------------------------------------
def parse_list(s, known, what):
    items = [x for x in s.split(",") if x]
    for x in items:
        if x not in known:
            die(f"unknown {what}: {x} (known: {', '.join(known)})")
    return items


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny work sizes (correctness check)")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds (default 3, 5 with --kfence)")
    p.add_argument("--threads", default="1,2,4", help="thread counts (default 1,2,4)")
    p.add_argument("--allocators", default=None,
                   help=f"allocators (default {','.join(ALLOCATORS)})")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--out", default=os.path.join(ROOT, "out", "suite"))
    p.add_argument("--build", default=os.environ.get("SLUB_BUILD_DIR",
                                                     os.path.join(ROOT, "build")))
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds for one run (default 120, 30 with --quick)")
    p.add_argument("--doc", action="store_true",
                   help="also write docs/BENCHMARKS.md and docs/img/bench/*.png (with "
                   "--kfence: its KFENCE overhead section only)")
    p.add_argument("--kfence", type=int, nargs="?", const=KFENCE_DEFAULT_MS, default=None,
                   metavar="MS",
                   help="KFENCE overhead: slub with SLUB_KFENCE=0 against slub-kfence with "
                   f"SLUB_KFENCE=MS (default {KFENCE_DEFAULT_MS}), instead of the allocators; "
                   "0 compares two identical runs (the noise floor)")
    args = p.parse_args()
    if args.kfence is not None:
        if args.kfence < 0:
            die(f"--kfence: the interval must be 0 or more milliseconds, not {args.kfence}")
        if args.allocators is not None:
            die("--kfence runs slub and slub-kfence; it does not take --allocators")
    if args.rounds is None:
        args.rounds = 3 if args.kfence is None else 5
    if args.rounds < 1:
        die("--rounds must be at least 1")
    try:
        args.thread_list = sorted({int(t) for t in args.threads.split(",") if t})
    except ValueError:
        die(f"--threads: not a list of numbers: {args.threads}")
    if not args.thread_list or min(args.thread_list) < 1:
        die("--threads needs positive numbers")
    timeout = args.timeout or (30.0 if args.quick else 120.0)
    args.out = os.path.abspath(args.out)
    args.build = os.path.abspath(args.build)
    shown = sys.argv[1:]
    if args.build == os.path.join(ROOT, "build"):  # tools/slub always passes its build/
        shown = [a for i, a in enumerate(shown)
                 if a != "--build" and not (i > 0 and shown[i - 1] == "--build")
                 and not a.startswith("--build=")]
    args.command_line = "tools/slub bench --suite" + "".join(" " + shlex.quote(a) for a in shown)

    # The runners: name -> (.so to preload, variables for the measured command). Each
    # allocator is one runner; --kfence makes slub two.
    if args.kfence is None:
        wanted = {a: (a, {}) for a in parse_list(args.allocators or ",".join(ALLOCATORS),
                                                 ALLOCATORS, "allocator")}
    else:
        wanted = kfence_variants(args.kfence)
        if args.rounds < 5:
            note(f"{args.rounds} rounds: the overhead numbers need 5 or more")
    runners = {}
    for name, (a, env) in wanted.items():
        so = so_of(a, args.build)
        if so and not os.path.isfile(so):
            note(f"skipping {name}: {so} not found")
            continue
        runners[name] = (so, env)
    if args.kfence is not None and len(runners) < 2:
        die("--kfence needs build/libslub.so")
    allocs = list(runners)
    if not allocs:
        die("no allocator to run")
    if BASELINE not in allocs and args.kfence is None:
        note("jemalloc is not running: no ratios")

    os.makedirs(args.out, exist_ok=True)
    suite = Suite(args)
    if args.kfence is not None:
        # Only the variants' own settings: e.g. SLUB_KFENCE_SAMPLE (the test mode) left in the
        # shell would change both runs.
        suite.drop_env = [k for k in os.environ if k.startswith("SLUB_KFENCE")]
        for k in suite.drop_env:
            note(f"--kfence: {k} is not passed on to the runs")
    shutil.rmtree(suite.raw, ignore_errors=True)
    os.makedirs(suite.raw)
    workloads = suite.prepare(parse_list(args.workloads, list(WORKLOADS), "workload"))
    cells = []
    for w in workloads:
        if WORKLOADS[w][0] == "real":
            cells.append((w, 1))
        else:
            cells += [(w, t) for t in args.thread_list]
    if not cells:
        die("no workload to run")

    res = Results(cells, allocs)
    n = len(allocs)
    load0 = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    print(f"bench_suite: {args.rounds} rounds x {len(cells)} cells x [{' '.join(allocs)}]"
          f"{' (quick)' if args.quick else ''}; output in {args.out}", file=sys.stderr)
    t_start = time.monotonic()
    for rnd in range(args.rounds):
        for ci, cell in enumerate(cells):
            order = [allocs[(i + rnd + ci) % n] for i in range(n)]
            for a in order:
                if (cell, a) in res.failed:
                    continue
                r = run_once(suite, cell[0], cell[1], a, *runners[a], rnd, timeout)
                res.add(cell, a, rnd, r)
                prev = {x.result for x in res.ok_runs(cell, a)} - {None}
                others = {x.result for b in allocs if b != a for x in res.ok_runs(cell, b)}
                state = "ok"
                if r.error:
                    res.failed[(cell, a)] = r.error
                    state = "FAILED: " + r.error
                elif others and r.result not in others:
                    state = "result differs from the other allocators' (checked at the end)"
                elif len(prev) > 1:
                    state = "result differs from this allocator's earlier rounds"
                print(f"round {rnd + 1}/{args.rounds} {cell_name(cell):<16} {a:<11} "
                      f"{r.wall:7.3f} s {r.maxrss_kib / 1024:8.1f} MiB  {state}",
                      file=sys.stderr, flush=True)
    elapsed = time.monotonic() - t_start
    load1 = os.getloadavg()[0]
    print(f"bench_suite: runs took {elapsed:.0f} s", file=sys.stderr)

    failures = [f"{cell_name(c)} {a}: {m}" for (c, a), m in res.failed.items()]
    failures += res.check_results()
    tables, csv_rows, plot, summary = build_tables(res)
    if args.kfence is not None:
        kf_text, kf_json = kfence_report(res, args, runners, failures,
                                         summary["spread"]["time"])
        tables = kf_text + "\n" + tables
        with open(os.path.join(args.out, "kfence.json"), "w") as f:
            json.dump(kf_json, f, indent=2)
            f.write("\n")

    with open(os.path.join(args.out, "samples.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "threads", "allocator", "round", "wall_s", "maxrss_kib",
                    "status", "result", "error"])
        for (cell, a), runs in res.samples.items():
            for rnd, r in runs:
                w.writerow([cell[0], cell[1], a, rnd, f"{r.wall:.4f}", r.maxrss_kib, r.status,
                            r.result or "", r.error or ""])
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(csv_rows[0].keys()))
        w.writeheader()
        for row in csv_rows:
            w.writerow({k: fmt_csv(v) for k, v in row.items()})
    head = (f"Suite: {args.rounds} rounds, medians; {'quick sizes; ' if args.quick else ''}"
            f"runs took {elapsed:.0f} s; load average {load0:.1f} -> {load1:.1f}.\n\n")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(head + tables)
    print("\n" + head + tables)
    pngs = write_plot(args.out, plot, summary["others"]) if BASELINE in allocs else []
    if args.doc and args.kfence is not None:
        write_kfence_doc(args, kf_text, started, elapsed, (load0, load1))
    elif args.doc:
        write_doc(args, res, tables, summary, pngs, machine_info(), started, elapsed,
                  (load0, load1), failures)
    shutil.rmtree(suite.tmp, ignore_errors=True)
    if failures:
        print("\nbench_suite: FAILURES:", file=sys.stderr)
        for m in failures:
            print("  " + m, file=sys.stderr)
        return 1
    print(f"bench_suite: wrote {args.out}/results.md, results.csv, samples.csv"
          + (", time_ratio.png, rss_ratio.png" if pngs else "")
          + (", kfence.json" if args.kfence is not None else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
