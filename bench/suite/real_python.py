# SPDX-License-Identifier: MIT
"""The suite's python3 workload: dicts, lists, strings, tuples and sets, about 1 s at the
default size. Deterministic (run with PYTHONHASHSEED=0); prints a few checksums, which must be
the same under every allocator. usage: python3 real_python.py [N] (default 80000)"""
import sys
import zlib

n = int(sys.argv[1]) if len(sys.argv) > 1 else 80000

# A dict of records built from formatted strings, then re-keyed and grouped.
records = {}
for i in range(n):
    key = "user-%07d-%s" % (i, "abcdefghij"[: i % 11])
    records[key] = {"id": i, "name": key.upper(), "tags": [str(i % 7), str(i % 13)],
                    "score": (i * 7919) % 10007}
by_tag = {}
for key, rec in records.items():
    for tag in rec["tags"]:
        by_tag.setdefault(tag, []).append(rec["score"])
tag_sums = sorted((tag, sum(v), len(v)) for tag, v in by_tag.items())

# Lists of tuples sorted and sliced; strings split, joined and replaced.
rows = sorted(((r["score"], r["id"], r["name"][-6:]) for r in records.values()), reverse=True)
text = " ".join("%d:%s" % (s, name) for s, _, name in rows[: n // 2])
words = text.replace(":", " ").split()
counts = {}
for w in words:
    counts[w] = counts.get(w, 0) + 1
top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]

# Sets and a churn of short-lived objects: build, filter, drop.
seen = set()
kept = 0
for i in range(n):
    t = (i % 997, str(i * 31)[-4:], i & 255)
    if t not in seen:
        seen.add(t)
        kept += 1
    if len(seen) > 50000:
        seen = {x for x in seen if (x[0] + i) % 3 == 0}

print("records", len(records))
print("tags", zlib.crc32(repr(tag_sums).encode()))
print("text", len(text), zlib.crc32(text.encode()))
print("top", zlib.crc32(repr(top).encode()))
print("kept", kept, len(seen))
