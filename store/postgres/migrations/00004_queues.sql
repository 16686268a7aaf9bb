-- The durable queues (see queues.go): partner webhooks and text messages,
-- one table for both, told apart by queue. A message is live in messages
-- until it is delivered (deleted) or given up (moved to dead_letters).
-- +goose Up

-- message_seq numbers the messages of every queue in the order they are
-- queued: Due hands them out by (next attempt, seq), and of one ordering
-- key only the lowest seq.
CREATE SEQUENCE message_seq AS bigint;

CREATE TABLE messages (
    queue        text        NOT NULL,
    id           text        NOT NULL,
    seq          bigint      NOT NULL,
    key          text        NOT NULL DEFAULT '', -- ordering key; '': none
    type         text        NOT NULL,
    body         bytea       NOT NULL,
    created      timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL,
    last_error   text        NOT NULL DEFAULT '',
    -- The instance that was handed the message last (lease_holder), and
    -- until when no other instance is handed it; NULL: nobody holds it.
    leased_until timestamptz,
    lease_holder text,
    PRIMARY KEY (queue, id)
);

-- Due and NextDue walk a queue by due time, in queue order.
CREATE INDEX messages_due ON messages (queue, next_attempt, seq);
-- "Is there an earlier message of this key?" is one probe.
CREATE INDEX messages_order ON messages (queue, key, seq) WHERE key <> '';
-- NextDue finds the messages other instances hold (few: those in flight).
CREATE INDEX messages_leased ON messages (queue, leased_until) WHERE leased_until IS NOT NULL;

-- The messages given up on, kept for an operator until their retention.
CREATE TABLE dead_letters (
    queue        text        NOT NULL,
    id           text        NOT NULL,
    seq          bigint      NOT NULL,
    key          text        NOT NULL DEFAULT '',
    type         text        NOT NULL,
    body         bytea       NOT NULL,
    created      timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL,
    last_error   text        NOT NULL DEFAULT '',
    PRIMARY KEY (queue, id)
);

-- SweepDeadLetters deletes the oldest first.
CREATE INDEX dead_letters_created ON dead_letters (queue, created);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE messages;
DROP SEQUENCE message_seq;
