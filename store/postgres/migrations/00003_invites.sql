-- Invitations with the indexes that find them, the partner API's
-- idempotent answers, and what Mono's webhooks leave behind: the event ids
-- applied and each account's latest account_updated.
-- +goose Up

-- Partner invitations (link.Invite). ended, the end of its use (the later
-- of its expiry and its last change), is what retention counts from, in
-- its class: hand-overs and the partner's.
CREATE TABLE invitations (
    id          text COLLATE "C" PRIMARY KEY,
    kind        text NOT NULL,
    code        text COLLATE "C" NOT NULL,
    phone       text NOT NULL,
    phone_key   text COLLATE "C" NOT NULL,
    reference   text COLLATE "C" NOT NULL,
    institution text NOT NULL,
    auth_method text NOT NULL,
    account_id  text COLLATE "C" NOT NULL,
    status      text NOT NULL,
    created     timestamptz NOT NULL,
    expires     timestamptz NOT NULL,
    updated     timestamptz NOT NULL,
    session     text COLLATE "C" NOT NULL,
    claimed     timestamptz,               -- NULL: never claimed
    link        jsonb,                     -- the link made under it
    handover    boolean NOT NULL,          -- link.Invite.Handover: its retention class
    ended       timestamptz GENERATED ALWAYS AS (GREATEST(expires, updated)) STORED
);
CREATE INDEX invitations_phone ON invitations (phone_key, created, id);
CREATE INDEX invitations_reference ON invitations (reference, id) WHERE reference <> '';
CREATE INDEX invitations_ended ON invitations (handover, ended, id);

-- The invitation holding each code, while it is pending: the primary key
-- is what keeps a code to one invitation.
CREATE TABLE invite_codes (
    code      text COLLATE "C" PRIMARY KEY,
    invite_id text COLLATE "C" NOT NULL REFERENCES invitations (id) ON DELETE CASCADE
);
CREATE INDEX invite_codes_invite ON invite_codes (invite_id);

-- Each account's latest written reauthorisation invitation.
CREATE TABLE reauths (
    account_id text COLLATE "C" PRIMARY KEY,
    invite_id  text COLLATE "C" NOT NULL REFERENCES invitations (id) ON DELETE CASCADE
);
CREATE INDEX reauths_invite ON reauths (invite_id);

-- The partner API's answers, replayed for a repeated Idempotency-Key.
CREATE TABLE idempotency (
    key          text COLLATE "C" PRIMARY KEY,
    status       integer NOT NULL,
    body         bytea NOT NULL,
    created      timestamptz NOT NULL,
    request_hash bytea
);
CREATE INDEX idempotency_created ON idempotency (created, key);

-- Mono event ids applied, with when they were seen, so a retry is not
-- applied again.
CREATE TABLE mono_events (
    id   text COLLATE "C" PRIMARY KEY,
    seen timestamptz NOT NULL
);
CREATE INDEX mono_events_seen ON mono_events (seen, id);

-- Each account's latest account_updated, for a link still being made.
CREATE TABLE mono_updates (
    account_id  text COLLATE "C" PRIMARY KEY,
    data_status text NOT NULL,
    event_at    timestamptz,              -- NULL: Mono sent no time
    received    timestamptz NOT NULL
);
CREATE INDEX mono_updates_received ON mono_updates (received, account_id);

-- +goose Down
DROP TABLE mono_updates;
DROP TABLE mono_events;
DROP TABLE idempotency;
DROP TABLE reauths;
DROP TABLE invite_codes;
DROP TABLE invitations;
