-- The funnel counts of the sessions that ended in a commit, one row per
-- commit: the arrays the counters' upsert takes (one element per counter
-- a session adds to: grouping, day, value, screen, reached, departures as
-- JSON; seconds, width buckets per counter, one after the other). A
-- commit inserts its row instead of upserting some 24 counters of
-- funnel_shards; Sweep folds the rows into funnel_shards and deletes
-- them, in one transaction, and a read sums what is not folded yet with
-- the counters, in one statement: each count is read once, before its
-- fold or after. An instance of the version before, still running during
-- a rolling upgrade, keeps upserting funnel_shards; its reads miss what is
-- not folded yet (what the sweeps of this version have not folded: a
-- sweep interval's worth while they run). The checks keep a row the fold
-- could not read from being written at all: its commit fails instead.
-- +goose Up
CREATE TABLE funnel_increments (
    id         bigserial PRIMARY KEY,
    grouped_by text[] NOT NULL,
    day        date[] NOT NULL,
    value      text[] NOT NULL,
    screen     text[] NOT NULL,
    reached    bigint[] NOT NULL,
    left_by    text[] NOT NULL,
    seconds    bigint[] NOT NULL,
    width      integer NOT NULL CHECK (width > 0),
    CHECK (cardinality(day) = cardinality(grouped_by) AND cardinality(value) = cardinality(grouped_by)
        AND cardinality(screen) = cardinality(grouped_by) AND cardinality(reached) = cardinality(grouped_by)
        AND cardinality(left_by) = cardinality(grouped_by) AND cardinality(seconds) = cardinality(grouped_by) * width)
);

-- +goose Down
-- What is not folded yet is folded into shard 0, then the table goes. Stop
-- the instances of this version first: after the drop, their commits
-- that end a session fail. The lock waits for a fold under way and keeps
-- out new rows, so that what the fold below reads is all there is. (The
-- same fold as the gateway's, written out here so that this file stays as
-- it is whatever the gateway later does; counters in key order, as every
-- upsert of funnel_shards takes them.)
LOCK TABLE funnel_increments IN EXCLUSIVE MODE;
WITH r AS (
    SELECT u.grouped_by, u.day, u.value, u.screen, u.reached, u.left_by::jsonb AS left_by,
        t.seconds[(u.i::int - 1) * t.width + 1 : u.i::int * t.width] AS seconds
    FROM funnel_increments t, unnest(t.grouped_by, t.day, t.value, t.screen, t.reached, t.left_by)
        WITH ORDINALITY AS u(grouped_by, day, value, screen, reached, left_by, i)),
k AS (SELECT grouped_by, day, value, screen, sum(reached)::bigint AS reached FROM r GROUP BY 1, 2, 3, 4),
b AS (SELECT r.grouped_by, r.day, r.value, r.screen, s.i, sum(s.n)::bigint AS n
    FROM r, unnest(r.seconds) WITH ORDINALITY AS s(n, i) GROUP BY 1, 2, 3, 4, 5),
h AS (SELECT grouped_by, day, value, screen, array_agg(n ORDER BY i) AS seconds FROM b GROUP BY 1, 2, 3, 4),
d AS (SELECT r.grouped_by, r.day, r.value, r.screen, l.key, sum(l.value::bigint) AS n
    FROM r, jsonb_each_text(r.left_by) AS l GROUP BY 1, 2, 3, 4, 5),
l AS (SELECT grouped_by, day, value, screen, jsonb_object_agg(key, n) AS left_by FROM d GROUP BY 1, 2, 3, 4)
INSERT INTO funnel_shards (grouped_by, day, value, screen, shard, reached, left_by, seconds)
    SELECT k.grouped_by, k.day, k.value, k.screen, 0, k.reached, coalesce(l.left_by, '{}'), h.seconds
    FROM k JOIN h USING (grouped_by, day, value, screen) LEFT JOIN l USING (grouped_by, day, value, screen)
    ORDER BY k.grouped_by COLLATE "C", k.day, k.value COLLATE "C", k.screen COLLATE "C"
    ON CONFLICT (grouped_by, day, value, screen, shard) DO UPDATE SET
        reached = funnel_shards.reached + EXCLUDED.reached,
        seconds = ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0)
            FROM unnest(funnel_shards.seconds, EXCLUDED.seconds) WITH ORDINALITY AS s(a, b, i) ORDER BY s.i),
        left_by = CASE WHEN EXCLUDED.left_by = '{}' THEN funnel_shards.left_by ELSE (
            SELECT jsonb_object_agg(r.key, r.n) FROM (
                SELECT e.key, sum(e.value::bigint) AS n
                FROM (SELECT * FROM jsonb_each_text(funnel_shards.left_by) UNION ALL SELECT * FROM jsonb_each_text(EXCLUDED.left_by)) AS e
                GROUP BY e.key) AS r) END;
DROP TABLE funnel_increments;
