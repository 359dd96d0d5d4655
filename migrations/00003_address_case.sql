-- +goose Up

-- ─── members (internal/members) ──────────────────────────────────────────

-- Addresses now compare case-insensitively, local part included
-- (mailaddr.Address.String): address_norm is lower case everywhere. Until
-- now GRACE@School8.Example and grace@school8.example could be two
-- members of one list, each getting every post. They are merged here: the
-- older subscription stays (with the highest role of the two, so no owner
-- is demoted), the others go, and each merge is kept in
-- member_case_merges, which parley logs once when it applies this.
CREATE TABLE member_case_merges (
    list_id        bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    kept_address   text NOT NULL,   -- as the kept member gave it
    merged_address text NOT NULL,   -- as the removed member gave it
    merged_role    text NOT NULL,
    merged_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TEMPORARY TABLE case_groups ON COMMIT DROP AS
SELECT id, list_id, address, role,
       first_value(id) OVER w AS kept_id,
       row_number() OVER w AS rank
  FROM members
WINDOW w AS (PARTITION BY list_id, lower(address_norm) ORDER BY joined_at, id);

UPDATE members m SET role = best.role
  FROM (SELECT kept_id,
               (array_agg(role ORDER BY CASE role WHEN 'owner' THEN 0 WHEN 'moderator' THEN 1 ELSE 2 END))[1] AS role
          FROM case_groups GROUP BY kept_id HAVING count(*) > 1) best
 WHERE m.id = best.kept_id AND m.role <> best.role;

INSERT INTO member_case_merges (list_id, kept_address, merged_address, merged_role)
SELECT g.list_id, k.address, g.address, g.role
  FROM case_groups g JOIN members k ON k.id = g.kept_id
 WHERE g.rank > 1;

DELETE FROM members WHERE id IN (SELECT id FROM case_groups WHERE rank > 1);
UPDATE members SET address_norm = lower(address_norm) WHERE address_norm <> lower(address_norm);
ALTER TABLE members ADD CONSTRAINT members_address_norm_lower CHECK (address_norm = lower(address_norm));

-- ─── the other address keys ──────────────────────────────────────────────

-- tokens (internal/tokens) and bounce events (internal/bounce) compare the
-- same way; a member's bounce score now counts the events of every
-- spelling.
UPDATE tokens SET address_norm = lower(address_norm) WHERE address_norm <> lower(address_norm);
UPDATE bounce_events SET address_norm = lower(address_norm) WHERE address_norm <> lower(address_norm);

-- The daily counts of automatic replies (internal/commands) add up.
INSERT INTO reply_counts (address_norm, day, count)
SELECT lower(address_norm), day, sum(count) FROM reply_counts
 WHERE address_norm <> lower(address_norm) GROUP BY 1, 2
ON CONFLICT (address_norm, day) DO UPDATE SET count = reply_counts.count + EXCLUDED.count;
DELETE FROM reply_counts WHERE address_norm <> lower(address_norm);
