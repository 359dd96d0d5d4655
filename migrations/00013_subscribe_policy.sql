-- +goose Up

-- 'confirm': a confirmed subscription takes effect; 'approve': it then
-- waits for an owner's approval too.
ALTER TABLE lists ADD COLUMN subscribe_policy text NOT NULL DEFAULT 'confirm'
    CHECK (subscribe_policy IN ('confirm', 'approve'));

-- +goose Down
ALTER TABLE lists DROP COLUMN subscribe_policy;
