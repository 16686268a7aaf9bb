-- Each funnel counter is kept in up to 16 rows (shards), summed when read.
-- Every session that ends adds to the same few counters of its day, and a
-- row an upsert changed stays locked until its transaction's commit is
-- flushed: on one row per counter, the ending sessions of all instances
-- would commit one after another, each waiting out the flush before it.
-- A transaction adds all its counts to one shard, chosen at random, and
-- in one order, so two transactions meet on a row only when they chose
-- the same shard, and never deadlock.
-- +goose Up
ALTER TABLE funnel ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE funnel DROP CONSTRAINT funnel_pkey;
ALTER TABLE funnel ADD PRIMARY KEY (grouped_by, day, value, screen, shard);

-- +goose Down
CREATE TABLE funnel_merged AS
    SELECT grouped_by, day, value, screen, sum(reached)::bigint AS reached,
        coalesce((SELECT jsonb_object_agg(e.key, e.n) FROM (
            SELECT l.key, sum(l.value::bigint) AS n FROM funnel f2, jsonb_each_text(f2.left_by) AS l
            WHERE (f2.grouped_by, f2.day, f2.value, f2.screen) = (f.grouped_by, f.day, f.value, f.screen)
            GROUP BY l.key) AS e), '{}') AS left_by,
        (SELECT array_agg(s.total ORDER BY s.i) FROM (
            SELECT b.i, sum(b.n)::bigint AS total FROM funnel f3, unnest(f3.seconds) WITH ORDINALITY AS b(n, i)
            WHERE (f3.grouped_by, f3.day, f3.value, f3.screen) = (f.grouped_by, f.day, f.value, f.screen)
            GROUP BY b.i) AS s) AS seconds
    FROM funnel f GROUP BY grouped_by, day, value, screen;
DELETE FROM funnel;
ALTER TABLE funnel DROP CONSTRAINT funnel_pkey;
ALTER TABLE funnel DROP COLUMN shard;
ALTER TABLE funnel ADD PRIMARY KEY (grouped_by, day, value, screen);
INSERT INTO funnel (grouped_by, day, value, screen, reached, left_by, seconds)
    SELECT grouped_by, day, value, screen, reached, left_by, seconds FROM funnel_merged;
DROP TABLE funnel_merged;
