-- The suite's sqlite3 workload (tools/bench_suite.py replaces @ROWS@, 200000 at the default
-- size, and runs `sqlite3 :memory: < script`): a table of @ROWS@ generated rows with text
-- columns, two indexes, updates, deletes, then grouping, join and ordering queries. The output
-- must be the same under every allocator.
PRAGMA cache_size = -65536;
CREATE TABLE item (id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, score INTEGER, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < @ROWS@)
INSERT INTO item (id, grp, name, score, note)
SELECT i, (i * 7919) % 1000, printf('item-%08d-%s', i, substr('abcdefghijklmnop', 1, i % 17)),
       (i * 104729) % 100003, printf('%x', i * 2654435761 % 4294967296)
FROM n;
CREATE INDEX item_grp ON item (grp, score);
CREATE INDEX item_name ON item (name);
UPDATE item SET score = score + 1 WHERE id % 5 = 0;
DELETE FROM item WHERE id % 11 = 0;
CREATE TABLE grp_info AS
  SELECT grp, count(*) AS n, sum(score) AS total, max(name) AS last FROM item GROUP BY grp;
SELECT count(*), sum(score), min(name), max(note) FROM item;
SELECT grp, n, total, last FROM grp_info ORDER BY total DESC LIMIT 10;
SELECT i.grp, count(*), sum(i.score - g.total / g.n)
  FROM item i JOIN grp_info g ON g.grp = i.grp
 WHERE i.score > 50000 GROUP BY i.grp ORDER BY 2 DESC, 1 LIMIT 10;
SELECT name, score FROM item WHERE name LIKE 'item-0001%' ORDER BY score DESC, name LIMIT 10;
SELECT count(DISTINCT substr(note, 1, 3)), group_concat(DISTINCT length(name)) FROM item;
SELECT name FROM item ORDER BY note, id LIMIT 5 OFFSET 1000;
