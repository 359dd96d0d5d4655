-- +goose Up

-- DMARC mitigation per list: 'policy' rewrites From: for authors whose
-- domain publishes p=quarantine or p=reject, 'always' for everyone,
-- 'never' for no one.
ALTER TABLE lists ADD COLUMN dmarc_mitigation text NOT NULL DEFAULT 'policy'
    CHECK (dmarc_mitigation IN ('policy', 'always', 'never'));

-- +goose Down
ALTER TABLE lists DROP COLUMN dmarc_mitigation;
