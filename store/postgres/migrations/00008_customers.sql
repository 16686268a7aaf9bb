-- The customer an invitation names for Mono's v2 sessions (link.Customer,
-- as JSON); NULL when the partner named none and the gateway's templates
-- decide.
-- +goose Up
ALTER TABLE invitations ADD COLUMN customer jsonb;

-- +goose Down
ALTER TABLE invitations DROP COLUMN customer;
