-- +goose Up

-- ─── archive (internal/archive) ──────────────────────────────────────────

-- The envelope sender a post came with: SMTP's MAIL FROM, or the sender
-- on an imported mbox message's From_ line. It is not in the message's
-- bytes, so it is kept here, and `parley archive export` writes it back
-- on the From_ line (it wrote MAILER-DAEMON for posts without a From:).
-- '' for posts archived before it was kept, and for the null sender.
ALTER TABLE messages ADD COLUMN envelope_from text NOT NULL DEFAULT '';
