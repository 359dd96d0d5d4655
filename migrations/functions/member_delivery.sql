-- member_delivery sets the delivery mode of members p_members (of one
-- list) to p_delivery, and keeps their digest spans (digest_spans) in
-- step: choosing a digest opens a span at the list's next article,
-- leaving digests ends it there, and changing digest format changes the
-- open span's. Owner: internal/members.
--
-- The list row is locked (FOR SHARE) first, as archiving a post locks it
-- to number the post (archive_posts), so the boundary is exact: every
-- post numbered before it was archived before this change committed,
-- and every one numbered from it after. A post's delivery, expanded
-- whenever it is (internal/outqueue), then goes by the spans, never by
-- when it happened to be expanded: a member who switches mid-period
-- loses nothing and gets nothing twice.
CREATE FUNCTION member_delivery(p_members bigint[], p_delivery text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_list   bigint;
    v_next   bigint;
    v_format text := CASE p_delivery WHEN 'digest' THEN 'mime' WHEN 'digest-plain' THEN 'plain'
                                     WHEN 'summary' THEN 'summary' END;
BEGIN
    SELECT DISTINCT list_id INTO v_list FROM members WHERE id = ANY (p_members);
    IF v_list IS NULL THEN
        RETURN;
    END IF;
    SELECT next_article INTO v_next FROM lists WHERE id = v_list FOR SHARE;
    UPDATE members SET delivery = p_delivery, updated_at = now()
     WHERE id = ANY (p_members) AND delivery <> p_delivery;
    IF v_format IS NULL THEN
        -- A span that holds no article yet goes; the others end here.
        DELETE FROM digest_spans
         WHERE member_id = ANY (p_members) AND until_article IS NULL AND from_article >= v_next;
        UPDATE digest_spans SET until_article = v_next
         WHERE member_id = ANY (p_members) AND until_article IS NULL;
        RETURN;
    END IF;
    UPDATE digest_spans SET format = v_format
     WHERE member_id = ANY (p_members) AND until_article IS NULL AND format <> v_format;
    INSERT INTO digest_spans (member_id, list_id, format, from_article)
    SELECT m, v_list, v_format, v_next FROM unnest(p_members) AS m
     WHERE NOT EXISTS (SELECT 1 FROM digest_spans s WHERE s.member_id = m AND s.until_article IS NULL);
END $$;
