#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the include rule of src/ (src/README.md's table of layers and ranks).

Every `#include "dir/file"` of a file under src/ must name a header of the file's own layer or of
a layer of lower rank; layers of equal rank (peers: slub and slab) include nothing of each
other. docs/ARCHITECTURE.md must draw the same chain of layers as src/README.md. Exit status 0
when both hold; otherwise each violation is printed on one line and the status is 1.

usage: check_layers.py [REPO_ROOT]
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
readme = (root / "src/README.md").read_text()

# | rank | layer | `dir/` | what |
ranks = {}
for m in re.finditer(r"^\|\s*(\d+)\s*\|\s*(\w+)\s*\|\s*`(\w+)/`\s*\|", readme, re.M):
    ranks[m.group(3)] = int(m.group(1))
if not ranks:
    sys.exit("check_layers: no layer table found in src/README.md")

chain = " -> ".join(" | ".join(d for d, r in ranks.items() if r == k) for k in sorted(set(ranks.values())))
errors = []
for doc in ("src/README.md", "docs/ARCHITECTURE.md"):
    if chain not in (root / doc).read_text():
        errors.append(f"{doc}: does not draw the layers as `{chain}`")

include = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"', re.M)
for path in sorted((root / "src").rglob("*")):
    if path.suffix not in (".h", ".cc", ".c"):
        continue
    layer = path.relative_to(root / "src").parts[0]
    if layer not in ranks:
        errors.append(f"{path.relative_to(root)}: directory {layer}/ is not in src/README.md's table")
        continue
    for m in include.finditer(path.read_text()):
        dep = m.group(1)
        if dep == layer:
            continue
        if dep not in ranks:
            errors.append(f"{path.relative_to(root)}: includes {m.group(0).strip()} of unknown layer {dep}/")
        elif ranks[dep] > ranks[layer]:
            errors.append(f"{path.relative_to(root)}: includes upward: {dep}/ (rank {ranks[dep]}) from {layer}/ (rank {ranks[layer]})")
        elif ranks[dep] == ranks[layer]:
            errors.append(f"{path.relative_to(root)}: includes its peer {dep}/ (both rank {ranks[layer]})")

for e in errors:
    print(e)
if errors:
    sys.exit(1)
print(f"layers: {chain}; every include of src/ follows it")
