-- outbound_post queues the delivery of archived message p_message to the
-- members of list p_list: one 'post' job, which the delivery workers
-- expand to one copy per member (internal/outqueue's Expand). Owner:
-- internal/outqueue, whose Go functions are the queue's other writers;
-- archive_store calls this, so a post and its delivery commit together.
--
-- PL/pgSQL, not SQL: archive_store calls it with PERFORM, where a SQL
-- function is not inlined and its body is parsed and planned on every
-- call; PL/pgSQL keeps the plan for the session.
CREATE FUNCTION outbound_post(p_list bigint, p_message bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbound (kind, list_id, message) VALUES ('post', p_list, p_message);
END $$;
