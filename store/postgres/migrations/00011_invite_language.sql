-- The language an invitation names (a lang code; '' when none): the
-- customer's session speaks it and their phone keeps it.
-- +goose Up
ALTER TABLE invitations ADD COLUMN language text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE invitations DROP COLUMN language;
