-- Sessions, each phone's latest one, the login lockout and the links the
-- sessions made. Text keys sort byte by byte (COLLATE "C"), as the bbolt
-- store's keys do, whatever the database's collation.
-- +goose Up

-- A conversation as the store keeps it (link.SessionRecord). Data is the
-- conversation's own encoding, byte for byte; sealed holds the secrets
-- sealed with the id as additional data, never in plain text.
CREATE TABLE sessions (
    id        text COLLATE "C" PRIMARY KEY,
    phone     text NOT NULL,
    phone_key text COLLATE "C" NOT NULL,  -- link.PhoneKey(phone)
    updated   timestamptz NOT NULL,
    purge     timestamptz NOT NULL,       -- swept once before the sweep's now
    lapse     timestamptz,                -- when the sealed secrets lapse (NULL: none given)
    data      bytea NOT NULL,
    sealed    bytea,                      -- NULL: no secrets
    lapsed    boolean NOT NULL DEFAULT false -- the sweeper erased the sealed secrets
);
CREATE INDEX sessions_purge ON sessions (purge, id);
CREATE INDEX sessions_lapse ON sessions (lapse, id) WHERE sealed IS NOT NULL;

-- Each phone's most recently written session; it goes with the session.
CREATE TABLE phone_sessions (
    phone_key  text COLLATE "C" PRIMARY KEY,
    session_id text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE
);
CREATE INDEX phone_sessions_session ON phone_sessions (session_id);

-- Refused logins and reserved attempts, counted against a phone for the
-- lockout. The id is the reservation's release key.
CREATE TABLE login_failures (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone_key text COLLATE "C" NOT NULL,
    at        timestamptz NOT NULL
);
CREATE INDEX login_failures_phone ON login_failures (phone_key, at);
CREATE INDEX login_failures_at ON login_failures (at, id);

-- Linked bank accounts (link.Link), by Mono account id.
CREATE TABLE links (
    account_id      text COLLATE "C" PRIMARY KEY,
    phone           text NOT NULL,
    phone_key       text COLLATE "C" NOT NULL,
    institution     text NOT NULL,
    bank            text NOT NULL,
    auth_method     text NOT NULL,
    masked          text NOT NULL,
    currency        text NOT NULL,
    session_id      text NOT NULL,
    reference       text NOT NULL,
    linked          timestamptz NOT NULL,
    data_status     text NOT NULL,
    reauth_required boolean NOT NULL,
    reauthorised    timestamptz            -- NULL: never
);
CREATE INDEX links_phone ON links (phone_key, account_id);

-- +goose Down
DROP TABLE links;
DROP TABLE login_failures;
DROP TABLE phone_sessions;
DROP TABLE sessions;
