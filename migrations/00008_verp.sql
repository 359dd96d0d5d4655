-- +goose Up

-- VERP per list: on (the default), each copy has its own return path, so
-- every bounce names its member; off, copies to one domain share SMTP
-- transactions (many RCPTs), which is faster for very large lists.
ALTER TABLE lists ADD COLUMN verp boolean NOT NULL DEFAULT true;

-- +goose Down
ALTER TABLE lists DROP COLUMN verp;
