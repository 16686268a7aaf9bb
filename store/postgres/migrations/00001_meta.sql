-- The database's own facts: the seal key check value, shared by every
-- instance (see sealcheck.go).
-- +goose Up
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

-- +goose Down
DROP TABLE meta;
