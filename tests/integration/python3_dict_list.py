# SPDX-License-Identifier: MIT
"""A dict/list/string-heavy workload for the python3_dict_list integration test.

Deterministic: prints only counts and checksums, which must be the same with and without
LD_PRELOAD=libslub.so. CPython's small-object allocator sits on top of malloc for arenas, and
every str, list, dict table and json buffer larger than 512 bytes goes to malloc directly.
"""

import collections
import json
import random
import zlib


def crc(text):
    return zlib.crc32(text.encode("utf-8")) & 0xFFFFFFFF


class Point:
    __slots__ = ("x", "y", "tag")

    def __init__(self, x, y, tag):
        self.x = x
        self.y = y
        self.tag = tag


class Node:
    def __init__(self, key, value):
        self.key = key
        self.value = value
        self.children = []


def main():
    rng = random.Random(20240601)

    # 1. A dict of 200k string keys with list values, grown in one go (many table resizes).
    table = {}
    for i in range(200_000):
        key = "k%06d-%s" % (i, "abcdefghij"[: (i * 7) % 11])
        table[key] = [i, str(i * i), key[::-1]]
    print("dict.len", len(table))

    # 2. Sorts: by key, by a computed key, and a shuffled list of strings.
    keys = sorted(table)
    by_len = sorted(table, key=lambda s: (len(s), s[::-1]))
    shuffled = keys[:]
    rng.shuffle(shuffled)
    shuffled.sort()
    assert shuffled == keys
    print("sort.keys", crc("|".join(keys[:1000])), crc("|".join(by_len[-1000:])))

    # 3. One big join and split (a multi-megabyte string, then 200k small ones again).
    joined = ",".join(keys)
    parts = joined.split(",")
    assert parts == keys
    print("join.len", len(joined), "crc", crc(joined))

    # 4. JSON round trip of the whole dict.
    blob = json.dumps(table, sort_keys=True, separators=(",", ":"))
    back = json.loads(blob)
    assert back == table
    print("json.len", len(blob), "crc", crc(blob))

    # 5. List and dict comprehensions, string formatting, grouping.
    squares = [v[0] * v[0] for v in table.values() if v[0] % 3 == 0]
    lengths = {k: len(v[1]) for k, v in table.items() if k.endswith("abc")}
    words = ["%x-%s" % (n, "z" * (n % 13)) for n in range(100_000)]
    groups = collections.defaultdict(list)
    for w in words:
        groups[len(w)].append(w)
    counts = collections.Counter(w[-1] for w in words)
    print("comp", len(squares), sum(squares) % 1_000_000_007, len(lengths),
          sum(lengths.values()))
    print("groups", sorted((k, len(v)) for k, v in groups.items()))
    print("counter", sorted(counts.items()))

    # 6. A few hundred thousand small objects: slotted points, tuples, a tree of dict objects,
    #    freed in a different order than they were made.
    points = [Point(i, -i, "p%d" % (i % 97)) for i in range(200_000)]
    tuples = [(p.x, p.tag) for p in points[::2]]
    del points[::3]
    root = Node("root", 0)
    level = [root]
    made = 1
    while made < 60_000:
        nxt = []
        for n in level:
            for j in range(4):
                c = Node("%s.%d" % (n.key, j), made)
                n.children.append(c)
                nxt.append(c)
                made += 1
        level = nxt

    def walk(n):
        total, stack = 0, [n]
        while stack:
            n = stack.pop()
            total += n.value + len(n.key)
            stack.extend(n.children)
        return total

    print("objects", len(points), sum(p.x for p in points) % 1_000_003, len(tuples),
          made, walk(root))

    # 7. Churn: repeatedly grow and shrink a dict and a list of bytes objects.
    churn = {}
    acc = 0
    for r in range(10):
        for i in range(20_000):
            churn[(r, i)] = bytes([i & 255]) * (i % 200 + 1)
        for i in range(0, 20_000, 2):
            acc += len(churn.pop((r, i)))
    print("churn", len(churn), acc, crc(repr(sorted(churn)[:50])))


if __name__ == "__main__":
    main()
