#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# git on a generated repository: init, add and commit of a few hundred generated files, 60
# commits on three branches, a merge with a conflict resolved by -X ours, a rebase, a
# cherry-pick, tags, a rename, gc and repack with deltas (2 threads), a clone through the pack
# protocol, and the commands that read it all back (log, diff with rename detection, blame,
# grep, archive, fsck --full --strict). Names, e-mails and dates are fixed, so commit and tree
# hashes are the same in every run. The workload (this script with --workload DIR) runs plain
# and with the preload library on bash, git and the helpers it starts; its output (hashes,
# logs, stats, checksums of the long outputs) must be identical.
# usage: git_ops.sh PATH/TO/libslub.so
if [[ ${1:-} == --workload ]]; then
  set -euo pipefail
  dir=$2
  rm -rf "$dir"
  mkdir -p "$dir/home"
  cd "$dir"
  export HOME=$dir/home GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME="A U Thor" \
    GIT_AUTHOR_EMAIL=author@example.com GIT_COMMITTER_NAME="C O Mitter" \
    GIT_COMMITTER_EMAIL=committer@example.com TZ=UTC LC_ALL=C GIT_PAGER=cat PAGER=cat
  unset GIT_DIR GIT_WORK_TREE
  n=0
  when() { # every commit a minute later than the one before
    n=$((n + 1))
    export GIT_AUTHOR_DATE="$((1700000000 + n * 60)) +0000"
    export GIT_COMMITTER_DATE="$GIT_AUTHOR_DATE"
  }
  sum() { sha256sum | cut -c1-16; }
  # gen SEED FILES...: (re)writes the files with lines derived from the seed and the name.
  gen() {
    local seed=$1
    shift
    awk -v seed="$seed" 'BEGIN {
      for (f = 2; f < ARGC; f++) {
        file = ARGV[f]; h = seed
        for (c = 1; c <= length(file); c++) h = (h * 31 + index("abcdefghijklmnopqrstuvwxyz0123456789/._-", substr(file, c, 1))) % 1000003
        lines = 20 + h % 180
        printf "" > file
        for (i = 0; i < lines; i++)
          printf "%s line %d: %08x value=%d %s\n", file, i, (h * 2654435761 + i * 40503) % 4294967296, (h + i * i) % 9973, substr("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor", 1 + (h + i) % 40) >> file
        close(file)
      }
    }' /dev/null "$@"
  }

  git init -q -b main repo
  cd repo
  git config gc.auto 0
  git config pack.threads 2
  git config core.bigFileThreshold 8m
  mkdir -p src/core src/util docs tests
  files=()
  for i in $(seq 0 299); do
    case $((i % 4)) in
      0) f=src/core/mod$i.c ;; 1) f=src/util/u$i.h ;; 2) f=docs/page$i.txt ;; 3) f=tests/t$i.sh ;;
    esac
    files+=("$f")
  done
  gen 1 "${files[@]}"
  head -c 300000 /dev/zero | tr '\0' 'x' | fold -w 100 >docs/big.txt # one larger blob
  git add -A
  when
  git commit -q -m "initial: ${#files[@]} files"
  git tag -a v0 -m "version 0"

  # main: 25 commits, each rewriting 12 files.
  for c in $(seq 1 25); do
    sel=()
    for k in $(seq 0 11); do sel+=("${files[$(((c * 37 + k * 23) % 300))]}"); done
    gen $((100 + c)) "${sel[@]}"
    git add -A
    when
    git commit -q -m "main change $c"
  done
  git tag -a v1 -m "version 1"

  # feature: from v0, 15 commits, a new directory, a rename; merged into main (conflicts on
  # shared files resolved with -X ours).
  git checkout -q -b feature v0
  for c in $(seq 1 15); do
    mkdir -p feature
    gen $((200 + c)) "feature/f$c.txt" "${files[$(((c * 11) % 300))]}"
    git add -A
    when
    git commit -q -m "feature change $c"
  done
  git mv src/util/u1.h src/util/renamed_u1.h
  when
  git commit -q -m "feature: rename u1.h"
  git checkout -q main
  when
  git merge -q --no-edit -X ours feature -m "merge feature"
  git tag -a v2 -m "version 2"

  # topic: from v1, 10 commits, rebased onto main; one commit cherry-picked back to a branch.
  git checkout -q -b topic v1
  for c in $(seq 1 10); do
    gen $((300 + c)) "topic$c.txt" "${files[$(((c * 53) % 300))]}"
    git add -A
    when
    git commit -q -m "topic change $c"
  done
  when
  git rebase -q -X theirs main
  git checkout -q -b picked v2
  when
  git cherry-pick -X theirs topic~3 >/dev/null
  git checkout -q main
  when
  git merge -q --no-ff --no-edit topic -m "merge topic"

  # Housekeeping, then read everything back.
  git gc -q --prune=now
  git repack -q -a -d -f --window=50 --depth=20
  echo "== heads"
  git for-each-ref --format='%(refname) %(objectname) %(objecttype)'
  echo "== log"
  git log --all --topo-order --format='%H %T %P %an %ad %s' --date=raw
  echo "== log -p (checksum)"
  git log --all -p --stat --topo-order | sum
  echo "== diff v0 v2 (renames)"
  git diff -M --stat=200,180 v0 v2 | tail -n 5
  git diff -M --name-status v0 v2 | grep -c . || true
  git diff -M v0 main | sum
  echo "== diff --word-diff v1 main (checksum)"
  git diff --word-diff v1 main | sum
  echo "== blame"
  git blame -s src/core/mod0.c | sum
  git blame -M -C --line-porcelain main -- src/util/renamed_u1.h | grep -c '^author ' || true
  echo "== grep"
  git grep -c 'value=99' main | sort | head -n 20
  echo "== objects"
  git cat-file --batch-all-objects --batch-check='%(objectname) %(objecttype) %(objectsize)' | sort | sum
  git rev-list --objects --all | sort | sum
  git count-objects -v | grep -E '^(count|in-pack|packs|garbage)'
  echo "== archive"
  git archive --format=tar v2 | sum
  echo "== fsck"
  git fsck --full --strict --no-progress --no-dangling 2>&1
  echo "== clone"
  cd ..
  git clone -q --no-local repo clone
  cd clone
  git fsck --full --strict --no-progress 2>&1
  git rev-parse HEAD "HEAD^{tree}"
  git log --oneline | wc -l
  git status --porcelain | wc -l
  echo "== done"
  exit 0
fi

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need git awk sha256sum fold
check_preload
cd "$TMP"
run_pair git bash "$HERE/git_ops.sh" --workload "$TMP/work"
grep -qx '== done' "$TMP/git.plain.out" || fail "the plain run did not finish its workload"
compare_outputs git
