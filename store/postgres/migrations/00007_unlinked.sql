-- When Mono said a link's account was unlinked (account_unlinked):
-- link.Link.Unlinked.
-- +goose Up
ALTER TABLE links ADD COLUMN unlinked timestamptz; -- NULL: not unlinked

-- +goose Down
ALTER TABLE links DROP COLUMN unlinked;
