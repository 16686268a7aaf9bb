-- What the text-message conversation keeps (see texting.go): opt-outs,
-- each phone's conversation, and the inbound message ids already taken.
-- Phones are keyed by link.PhoneKey (without their "+").
-- +goose Up
CREATE TABLE opt_outs (
    phone_key text        PRIMARY KEY,
    at        timestamptz NOT NULL -- when the phone texted STOP
);

CREATE TABLE conversations (
    phone_key text        PRIMARY KEY,
    session   text        NOT NULL,
    seq       integer     NOT NULL,
    expires   timestamptz NOT NULL
);

-- SweepConversations deletes the longest expired first.
CREATE INDEX conversations_expires ON conversations (expires);

CREATE TABLE inbound_seen (
    provider text        NOT NULL,
    id       text        NOT NULL,
    seen     timestamptz NOT NULL, -- when it was (last) first taken
    PRIMARY KEY (provider, id)
);

-- SweepInbound forgets the oldest first.
CREATE INDEX inbound_seen_seen ON inbound_seen (seen);

-- +goose Down
DROP TABLE inbound_seen;
DROP TABLE conversations;
DROP TABLE opt_outs;
