-- +goose Up

-- ─── lists (internal/lists) ──────────────────────────────────────────────

-- Tell the owners when someone joins or leaves on their own (by mail or
-- a one-click link), as Mailman's admin_notify_mchanges does: an owner of
-- a private list otherwise never hears that a stranger joined.
ALTER TABLE lists ADD COLUMN notify_membership boolean NOT NULL DEFAULT true;
