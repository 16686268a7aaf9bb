-- The drop-off funnel's daily counters (link.FunnelCount): for each UTC
-- day, grouping and screen, how many sessions reached the screen, how many
-- ended on it by reason, and a histogram of the seconds spent on it. A
-- session's counts are added in the transaction that ends it (its commit,
-- or the sweep that deletes it). They outlive their sessions and have no
-- retention yet: days × groupings × values × screens, a few hundred small
-- rows a day. Text keys sort byte by byte (COLLATE "C"), as the bbolt
-- store's keys do.
-- +goose Up
CREATE TABLE funnel (
    grouped_by text COLLATE "C" NOT NULL,     -- one of link.FunnelGroupings ('' is every session)
    day        date NOT NULL,                 -- UTC
    value      text COLLATE "C" NOT NULL,     -- the grouping's value ('' under '')
    screen     text COLLATE "C" NOT NULL,
    reached    bigint NOT NULL,
    -- reason → sessions that ended on the screen; merged key by key in
    -- SQL, so that a counter stays one row, added to by one upsert.
    left_by    jsonb NOT NULL DEFAULT '{}',
    -- one bucket per link.FunnelSecondsBounds, and one for the rest
    seconds    bigint[] NOT NULL,
    PRIMARY KEY (grouped_by, day, value, screen)
);

-- +goose Down
DROP TABLE funnel;
