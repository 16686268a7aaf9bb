-- Leases: which instance runs a piece of background work (a Mono login
-- outliving its hop), for as long as it renews the lease. An instance that
-- dies stops renewing; another takes the work over once the lease lapses.
-- +goose Up
CREATE TABLE leases (
    key   text PRIMARY KEY,
    owner text NOT NULL,
    until timestamptz NOT NULL
);
CREATE INDEX leases_until ON leases (until);

-- +goose Down
DROP TABLE leases;
