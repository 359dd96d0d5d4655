-- +goose Up

-- A stored service-address message that keeps failing is set aside after a
-- few attempts instead of blocking the ones behind it.
ALTER TABLE inbound ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE inbound ADD COLUMN last_error text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE inbound DROP COLUMN last_error;
ALTER TABLE inbound DROP COLUMN attempts;
