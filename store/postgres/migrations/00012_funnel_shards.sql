-- The funnel's counters as this version adds to them: each counter kept
-- in up to 16 rows (shards), summed (with the rows of funnel, which an
-- earlier version added to) when read. Every session that ends adds to
-- the same few counters of its day, and a row an upsert changed stays
-- locked until its transaction's commit is flushed: on one row per
-- counter, the ending sessions of all instances committed one after
-- another, each waiting out the flush before it. A transaction adds all
-- its counts to one shard, chosen at random, and in one order, so two
-- transactions meet on a row only when they chose the same shard, and
-- never deadlock. funnel itself is left as it is, so that an instance of
-- the version before, still running while others upgrade, keeps adding
-- to it.
-- +goose Up
CREATE TABLE funnel_shards (
    grouped_by text COLLATE "C" NOT NULL,
    day        date NOT NULL,
    value      text COLLATE "C" NOT NULL,
    screen     text COLLATE "C" NOT NULL,
    shard      smallint NOT NULL,
    reached    bigint NOT NULL,
    left_by    jsonb NOT NULL DEFAULT '{}',
    seconds    bigint[] NOT NULL,
    PRIMARY KEY (grouped_by, day, value, screen, shard)
);

-- +goose Down
-- The shards are summed back into funnel, one row a counter.
CREATE TEMP TABLE funnel_merged AS
    WITH r AS (
        SELECT grouped_by, day, value, screen, reached, left_by, seconds FROM funnel
        UNION ALL
        SELECT grouped_by, day, value, screen, reached, left_by, seconds FROM funnel_shards),
    k AS (SELECT grouped_by, day, value, screen, sum(reached)::bigint AS reached FROM r GROUP BY 1, 2, 3, 4)
    SELECT k.grouped_by, k.day, k.value, k.screen, k.reached,
        coalesce((SELECT jsonb_object_agg(e.key, e.n) FROM (
            SELECT l.key, sum(l.value::bigint) AS n FROM r, jsonb_each_text(r.left_by) AS l
            WHERE (r.grouped_by, r.day, r.value, r.screen) = (k.grouped_by, k.day, k.value, k.screen)
            GROUP BY l.key) AS e), '{}') AS left_by,
        (SELECT array_agg(s.total ORDER BY s.i) FROM (
            SELECT b.i, sum(b.n)::bigint AS total FROM r, unnest(r.seconds) WITH ORDINALITY AS b(n, i)
            WHERE (r.grouped_by, r.day, r.value, r.screen) = (k.grouped_by, k.day, k.value, k.screen)
            GROUP BY b.i) AS s) AS seconds
    FROM k;
DELETE FROM funnel;
INSERT INTO funnel (grouped_by, day, value, screen, reached, left_by, seconds)
    SELECT grouped_by, day, value, screen, reached, left_by, seconds FROM funnel_merged;
DROP TABLE funnel_merged;
DROP TABLE funnel_shards;
