-- +goose Up

-- ─── archive (internal/archive) ──────────────────────────────────────────

-- lines: the body's line count, the news overview's ":lines" (RFC 3977
-- §8.4.2), kept when the post is stored as size is, so that OVER over a
-- whole group reads no message. A line is what ends in LF, and a last
-- line without one. Posts archived before this are counted here.
ALTER TABLE messages ADD COLUMN lines integer NOT NULL DEFAULT 0;
UPDATE messages SET lines = b.n + (CASE WHEN b.len > 0 AND b.last <> 10 THEN 1 ELSE 0 END)
  FROM (SELECT id,
               length(t) - length(replace(t, E'\n', '')) AS n,
               length(t) AS len,
               CASE WHEN length(t) > 0 THEN ascii(right(t, 1)) END AS last
          FROM (SELECT id, convert_from(substring(raw FROM header_len + 1), 'LATIN1') AS t FROM messages) body) b
 WHERE messages.id = b.id;
