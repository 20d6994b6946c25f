#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# sqlite3 on a fresh database file: a table of 200k rows made by a recursive CTE, an index,
# aggregates, a join and an update. Outputs of the plain and the preloaded run must match.
# usage: sqlite3.sh PATH/TO/libslub.so
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SQLITE=/usr/bin/sqlite3
need "$SQLITE"
check_preload
cd "$TMP"

cat >script.sql <<'SQL'
PRAGMA journal_mode = WAL;
PRAGMA cache_size = -16000;
CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, payload BLOB);
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 200000)
INSERT INTO t (id, grp, name, val, payload)
  SELECT n, n % 97, 'name-' || (n * 7919 % 200003) || '-' || substr('abcdefghijklmnop', 1 + n % 16),
         (n * 37 % 1000) / 7.0, zeroblob(n % 64)
  FROM seq;
CREATE INDEX t_name ON t (name);
CREATE INDEX t_grp_val ON t (grp, val);
SELECT count(*), sum(grp), printf('%.3f', sum(val)), sum(length(payload)) FROM t;
SELECT grp, count(*), printf('%.3f', avg(val)), min(name), max(name) FROM t
  GROUP BY grp ORDER BY grp LIMIT 10;
SELECT name FROM t WHERE name LIKE 'name-1999%' ORDER BY name LIMIT 5;
SELECT count(DISTINCT name), count(DISTINCT substr(name, 1, 8)) FROM t;
SELECT group_concat(id, ',') FROM (SELECT id FROM t WHERE grp = 13 ORDER BY val DESC, id LIMIT 20);
CREATE TABLE g AS SELECT grp, sum(val) AS s FROM t GROUP BY grp;
SELECT count(*), printf('%.3f', sum(g.s)) FROM t JOIN g USING (grp) WHERE t.id % 1000 = 0;
UPDATE t SET name = upper(name), val = val * 2 WHERE id % 5 = 0;
DELETE FROM t WHERE id % 7 = 0;
SELECT count(*), printf('%.3f', sum(val)), sum(name GLOB 'NAME-*') FROM t;
SELECT name, val FROM t ORDER BY val DESC, name LIMIT 5;
PRAGMA integrity_check;
SQL

# Each run starts from a fresh database file.
# shellcheck disable=SC2016 # expanded by the inner sh
run_pair sqlite sh -c 'rm -f test.db test.db-wal test.db-shm && exec "$1" test.db <script.sql' sh "$SQLITE"
grep -qx ok "$TMP/sqlite.plain.out" || fail "plain run: integrity_check did not print ok"
compare_outputs sqlite
