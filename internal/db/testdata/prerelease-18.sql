-- A frozen copy of a pre-release parley database: the schema of the
-- pre-release migration chain at its last version (18), with data in every
-- table (lists on two domains, members of every role, threaded posts and a
-- ghost, held and discarded posts, processed and waiting service mail, a
-- bounce, tokens, bans, a template, the unsubscribe secret, a DKIM key, and
-- outbound jobs whose copies are sent, failed, deferred and pending).
--
-- Made on 2026-12-03 from commit 6a197dc with pg_dump --inserts --no-owner
-- --no-privileges --no-comments (PostgreSQL 15), after driving parley's own
-- packages (intake, command and bounce processing, the outbound queue)
-- against a database migrated by that commit; psql's \restrict lines are
-- removed. internal/db's TestUpgradeFromPrerelease restores it and checks
-- that the upgrade to the baseline keeps every row. Never edit it: it
-- stands for databases that exist.
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: pg_trgm; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;


--
-- Name: archive_posts(jsonb, bytea[], bytea[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.archive_posts(p_posts jsonb, p_raw bytea[], p_key bytea[]) RETURNS TABLE(id bigint, article bigint, thread_id bigint, duplicate boolean)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
DECLARE
    p jsonb;
    i integer := 0;
    l bigint;
    next jsonb := '{}';
BEGIN
    FOR p IN SELECT value FROM jsonb_array_elements(p_posts) LOOP
        i := i + 1;
        l := (p->>'list')::bigint;
        IF NOT next ? l::text THEN
            next := next || jsonb_build_object(l::text,
                (SELECT lists.next_article FROM lists WHERE lists.id = l FOR UPDATE));
        END IF;
        SELECT m.id, m.article, m.thread_id, true INTO id, article, thread_id, duplicate
          FROM messages m WHERE m.list_id = l AND m.message_id = p->>'msgid' AND m.content_key = p_key[i];
        IF NOT FOUND THEN
            article := (next->>l::text)::bigint;
            next := jsonb_set(next, ARRAY[l::text], to_jsonb(article + 1));
            duplicate := false;
            SELECT s.id, s.thread_id INTO id, thread_id FROM archive_store(
                l, article, p->>'msgid', (p->>'synth')::boolean, p_key[i], p_raw[i],
                (p->>'header_len')::integer, (p->>'received')::timestamptz, (p->>'sent')::timestamptz,
                p->>'from', p->>'from_name', p->>'subject', p->>'subject_key', p->>'subject_lookup',
                p->>'in_reply_to',
                ARRAY(SELECT jsonb_array_elements_text(p->'refs')), p->>'parent', p->'mime', decode(p->>'imap', 'base64'),
                p->>'source', (p->>'queue')::boolean) s;
        END IF;
        RETURN NEXT;
    END LOOP;
    UPDATE lists SET next_article = (next->>lists.id::text)::bigint
     WHERE lists.id IN (SELECT k::bigint FROM jsonb_object_keys(next) AS k);
END $$;


--
-- Name: archive_store(bigint, bigint, text, boolean, bytea, bytea, integer, timestamp with time zone, timestamp with time zone, text, text, text, text, text, text, text[], text, jsonb, bytea, text, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.archive_store(p_list bigint, p_article bigint, p_msgid text, p_synth boolean, p_key bytea, p_raw bytea, p_header_len integer, p_received timestamp with time zone, p_sent timestamp with time zone, p_from text, p_from_name text, p_subject text, p_subject_key text, p_subject_lookup text, p_in_reply_to text, p_refs text[], p_parent text, p_mime jsonb, p_imap bytea, p_source text, p_queue boolean, OUT id bigint, OUT thread_id bigint) RETURNS record
    LANGUAGE plpgsql
    AS $$
BEGIN
    thread_id := archive_thread(p_list, p_article, p_msgid, p_refs, p_subject_lookup);
    INSERT INTO messages (list_id, article, message_id, msgid_synth, content_key, raw, size, header_len,
                          received_at, sent_at, from_addr, from_name, subject, subject_key, in_reply_to,
                          refs, parent_msgid, thread_id, mime, imap, source)
    VALUES (p_list, p_article, p_msgid, p_synth, p_key, p_raw, length(p_raw), p_header_len, p_received, p_sent,
            p_from, p_from_name, p_subject, p_subject_key, p_in_reply_to, p_refs, p_parent, thread_id, p_mime,
            p_imap, p_source)
    RETURNING messages.id INTO id;
    IF p_queue THEN
        INSERT INTO outbound (kind, list_id, message) VALUES ('post', p_list, id);
    END IF;
END $$;


--
-- Name: archive_thread(bigint, bigint, text, text[], text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.archive_thread(p_list bigint, p_article bigint, p_msgid text, p_refs text[], p_subject_key text) RETURNS bigint
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
DECLARE
    found bigint[];
    tid bigint;
BEGIN
    SELECT coalesce(array_agg(DISTINCT t), '{}') INTO found FROM (
        SELECT thread_id AS t FROM messages
         WHERE list_id = p_list AND message_id = ANY (p_refs || p_msgid) AND article < p_article
        UNION
        SELECT thread_id FROM ghosts WHERE list_id = p_list AND message_id = ANY (p_refs || p_msgid)
        UNION
        (SELECT thread_id FROM messages
          WHERE p_subject_key <> '' AND list_id = p_list AND subject_key = p_subject_key AND article < p_article
          ORDER BY article DESC LIMIT 1)) x;
    SELECT least(p_article, min(f)) INTO tid FROM unnest(found) AS f;
    IF cardinality(found) > 1 OR (cardinality(found) = 1 AND found[1] <> tid) THEN
        UPDATE messages SET thread_id = tid WHERE list_id = p_list AND thread_id = ANY (found) AND thread_id <> tid;
        UPDATE ghosts SET thread_id = tid WHERE list_id = p_list AND thread_id = ANY (found) AND thread_id <> tid;
    END IF;
    DELETE FROM ghosts WHERE list_id = p_list AND message_id = p_msgid;
    INSERT INTO ghosts (list_id, message_id, thread_id)
    SELECT p_list, r, tid FROM unnest(p_refs) AS r
     WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.list_id = p_list AND m.message_id = r AND m.article < p_article)
    ON CONFLICT (list_id, message_id) DO UPDATE SET thread_id = EXCLUDED.thread_id;
    RETURN tid;
END $$;


--
-- Name: message_text(bytea); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.message_text(raw bytea) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT COST 10000 PARALLEL SAFE
    AS $$ BEGIN RETURN encode(raw, 'escape'); END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: bans; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.bans (
    id bigint NOT NULL,
    list_id bigint,
    pattern text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT bans_pattern_check CHECK (((pattern <> ''::text) AND (pattern = lower(pattern))))
);


--
-- Name: bans_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.bans_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: bans_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.bans_id_seq OWNED BY public.bans.id;


--
-- Name: bounce_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.bounce_events (
    id bigint NOT NULL,
    list_id bigint NOT NULL,
    address_norm text NOT NULL,
    kind text NOT NULL,
    weight numeric NOT NULL,
    status text DEFAULT ''::text NOT NULL,
    diagnostic text DEFAULT ''::text NOT NULL,
    source text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT bounce_events_kind_check CHECK ((kind = ANY (ARRAY['hard'::text, 'soft'::text, 'author_policy'::text]))),
    CONSTRAINT bounce_events_source_check CHECK ((source = ANY (ARRAY['dsn'::text, 'smtp'::text])))
);


--
-- Name: bounce_events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.bounce_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: bounce_events_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.bounce_events_id_seq OWNED BY public.bounce_events.id;


--
-- Name: deliveries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.deliveries (
    id bigint NOT NULL,
    job bigint NOT NULL,
    list_id bigint NOT NULL,
    rcpt text NOT NULL,
    domain text NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    lease_until timestamp with time zone,
    last_code integer,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    done_at timestamp with time zone,
    CONSTRAINT deliveries_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'sending'::text, 'sent'::text, 'failed'::text])))
);


--
-- Name: deliveries_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.deliveries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: deliveries_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.deliveries_id_seq OWNED BY public.deliveries.id;


--
-- Name: dkim_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dkim_keys (
    id bigint NOT NULL,
    domain text NOT NULL,
    selector text NOT NULL,
    algorithm text NOT NULL,
    private_key text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT dkim_keys_algorithm_check CHECK ((algorithm = ANY (ARRAY['rsa'::text, 'ed25519'::text]))),
    CONSTRAINT dkim_keys_domain_check CHECK ((domain = lower(domain))),
    CONSTRAINT dkim_keys_selector_check CHECK ((selector ~ '^[a-z0-9][a-z0-9-]*$'::text))
);


--
-- Name: dkim_keys_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.dkim_keys_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: dkim_keys_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.dkim_keys_id_seq OWNED BY public.dkim_keys.id;


--
-- Name: domains; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.domains (
    id bigint NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT domains_name_check CHECK (((name <> ''::text) AND (name = lower(name))))
);


--
-- Name: domains_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.domains_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: domains_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.domains_id_seq OWNED BY public.domains.id;


--
-- Name: ghosts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ghosts (
    list_id bigint NOT NULL,
    message_id text NOT NULL,
    thread_id bigint NOT NULL
);


--
-- Name: goose_db_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.goose_db_version (
    id integer NOT NULL,
    version_id bigint NOT NULL,
    is_applied boolean NOT NULL,
    tstamp timestamp without time zone DEFAULT now() NOT NULL
);


--
-- Name: goose_db_version_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.goose_db_version ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME public.goose_db_version_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: inbound; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.inbound (
    id bigint NOT NULL,
    list_id bigint NOT NULL,
    kind text NOT NULL,
    rcpt text NOT NULL,
    detail text DEFAULT ''::text NOT NULL,
    mail_from text NOT NULL,
    content_key bytea NOT NULL,
    raw bytea NOT NULL,
    state text DEFAULT 'new'::text NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text DEFAULT ''::text NOT NULL,
    CONSTRAINT inbound_kind_check CHECK ((kind = ANY (ARRAY['request'::text, 'join'::text, 'leave'::text, 'confirm'::text, 'owner'::text, 'bounce'::text]))),
    CONSTRAINT inbound_state_check CHECK ((state = ANY (ARRAY['new'::text, 'done'::text, 'failed'::text])))
);


--
-- Name: inbound_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.inbound_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: inbound_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.inbound_id_seq OWNED BY public.inbound.id;


--
-- Name: list_templates; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.list_templates (
    list_id bigint NOT NULL,
    name text NOT NULL,
    body text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: lists; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.lists (
    id bigint NOT NULL,
    domain_id bigint NOT NULL,
    local_part text NOT NULL,
    address text NOT NULL,
    display_name text DEFAULT ''::text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    post_policy text DEFAULT 'members'::text NOT NULL,
    archive text DEFAULT 'public'::text NOT NULL,
    subject_prefix text DEFAULT ''::text NOT NULL,
    uidvalidity bigint NOT NULL,
    next_article bigint DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    nonmember_action text DEFAULT 'hold'::text NOT NULL,
    max_message_bytes bigint DEFAULT 0 NOT NULL,
    subject_threading boolean DEFAULT false NOT NULL,
    dmarc_mitigation text DEFAULT 'policy'::text NOT NULL,
    verp boolean DEFAULT true NOT NULL,
    moderator_password text DEFAULT ''::text NOT NULL,
    roster text DEFAULT 'owners'::text NOT NULL,
    subscribe_policy text DEFAULT 'confirm'::text NOT NULL,
    CONSTRAINT lists_archive_check CHECK ((archive = ANY (ARRAY['public'::text, 'private'::text]))),
    CONSTRAINT lists_dmarc_mitigation_check CHECK ((dmarc_mitigation = ANY (ARRAY['policy'::text, 'always'::text, 'never'::text]))),
    CONSTRAINT lists_local_part_check CHECK (((local_part ~ '^[a-z0-9][a-z0-9._-]*$'::text) AND (length(local_part) <= 64))),
    CONSTRAINT lists_max_message_bytes_check CHECK ((max_message_bytes >= 0)),
    CONSTRAINT lists_next_article_check CHECK ((next_article >= 1)),
    CONSTRAINT lists_nonmember_action_check CHECK ((nonmember_action = ANY (ARRAY['hold'::text, 'reject'::text, 'discard'::text]))),
    CONSTRAINT lists_post_policy_check CHECK ((post_policy = ANY (ARRAY['open'::text, 'members'::text, 'moderated'::text, 'announce'::text]))),
    CONSTRAINT lists_roster_check CHECK ((roster = ANY (ARRAY['owners'::text, 'members'::text, 'public'::text]))),
    CONSTRAINT lists_subscribe_policy_check CHECK ((subscribe_policy = ANY (ARRAY['confirm'::text, 'approve'::text]))),
    CONSTRAINT lists_uidvalidity_check CHECK (((uidvalidity >= 1) AND (uidvalidity <= '4294967295'::bigint)))
);


--
-- Name: lists_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.lists_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: lists_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.lists_id_seq OWNED BY public.lists.id;


--
-- Name: members; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.members (
    id bigint NOT NULL,
    list_id bigint NOT NULL,
    address text NOT NULL,
    address_norm text NOT NULL,
    display_name text DEFAULT ''::text NOT NULL,
    role text DEFAULT 'member'::text NOT NULL,
    delivery text DEFAULT 'regular'::text NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    moderated boolean DEFAULT false NOT NULL,
    joined_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    disabled_reason text DEFAULT ''::text NOT NULL,
    self_copy boolean DEFAULT true NOT NULL,
    archive_password text DEFAULT ''::text NOT NULL,
    CONSTRAINT members_delivery_check CHECK ((delivery = ANY (ARRAY['regular'::text, 'digest'::text, 'nomail'::text]))),
    CONSTRAINT members_role_check CHECK ((role = ANY (ARRAY['member'::text, 'moderator'::text, 'owner'::text]))),
    CONSTRAINT members_status_check CHECK ((status = ANY (ARRAY['active'::text, 'disabled'::text])))
);


--
-- Name: members_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.members_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: members_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.members_id_seq OWNED BY public.members.id;


--
-- Name: messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.messages (
    id bigint NOT NULL,
    list_id bigint NOT NULL,
    article bigint NOT NULL,
    message_id text NOT NULL,
    msgid_synth boolean DEFAULT false NOT NULL,
    content_key bytea NOT NULL,
    raw bytea NOT NULL,
    size integer NOT NULL,
    header_len integer NOT NULL,
    received_at timestamp with time zone NOT NULL,
    sent_at timestamp with time zone,
    from_addr text DEFAULT ''::text NOT NULL,
    from_name text DEFAULT ''::text NOT NULL,
    subject text DEFAULT ''::text NOT NULL,
    subject_key text DEFAULT ''::text NOT NULL,
    in_reply_to text,
    refs text[] DEFAULT '{}'::text[] NOT NULL,
    parent_msgid text,
    thread_id bigint DEFAULT 0 NOT NULL,
    mime jsonb DEFAULT '[]'::jsonb NOT NULL,
    source text DEFAULT 'smtp'::text NOT NULL,
    imap bytea,
    CONSTRAINT messages_article_check CHECK ((article >= 1)),
    CONSTRAINT messages_source_check CHECK ((source = ANY (ARRAY['smtp'::text, 'lmtp'::text, 'approved'::text, 'import'::text])))
);


--
-- Name: messages_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.messages_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: messages_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.messages_id_seq OWNED BY public.messages.id;


--
-- Name: moderation; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.moderation (
    id bigint NOT NULL,
    list_id bigint NOT NULL,
    state text NOT NULL,
    rule text NOT NULL,
    reason text NOT NULL,
    mail_from text NOT NULL,
    from_addr text DEFAULT ''::text NOT NULL,
    subject text DEFAULT ''::text NOT NULL,
    message_id text NOT NULL,
    content_key bytea NOT NULL,
    raw bytea NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    decided_at timestamp with time zone,
    decided_by text,
    decision_note text,
    CONSTRAINT moderation_state_check CHECK ((state = ANY (ARRAY['held'::text, 'approved'::text, 'rejected'::text, 'discarded'::text])))
);


--
-- Name: moderation_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.moderation_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: moderation_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.moderation_id_seq OWNED BY public.moderation.id;


--
-- Name: outbound; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.outbound (
    id bigint NOT NULL,
    kind text NOT NULL,
    list_id bigint NOT NULL,
    message bigint,
    rcpts text[],
    mail_from text DEFAULT ''::text NOT NULL,
    body bytea,
    state text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    lease_until timestamp with time zone,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT outbound_check CHECK (((kind <> 'post'::text) OR (message IS NOT NULL))),
    CONSTRAINT outbound_check1 CHECK (((kind <> 'notice'::text) OR ((body IS NOT NULL) AND (rcpts IS NOT NULL)))),
    CONSTRAINT outbound_kind_check CHECK ((kind = ANY (ARRAY['post'::text, 'notice'::text]))),
    CONSTRAINT outbound_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'sending'::text, 'expanded'::text, 'done'::text, 'failed'::text])))
);


--
-- Name: outbound_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.outbound_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: outbound_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.outbound_id_seq OWNED BY public.outbound.id;


--
-- Name: reply_counts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reply_counts (
    address_norm text NOT NULL,
    day date NOT NULL,
    count integer DEFAULT 0 NOT NULL
);


--
-- Name: secrets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.secrets (
    name text NOT NULL,
    value bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT secrets_value_check CHECK ((length(value) >= 32))
);


--
-- Name: tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tokens (
    id bigint NOT NULL,
    hash bytea NOT NULL,
    list_id bigint NOT NULL,
    address text NOT NULL,
    address_norm text NOT NULL,
    action text NOT NULL,
    mode text DEFAULT 'regular'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    payload text DEFAULT ''::text NOT NULL,
    CONSTRAINT tokens_action_check CHECK ((action = ANY (ARRAY['subscribe'::text, 'unsubscribe'::text, 'command'::text, 'held'::text, 'settings'::text])))
);


--
-- Name: tokens_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.tokens_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: tokens_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.tokens_id_seq OWNED BY public.tokens.id;


--
-- Name: bans id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bans ALTER COLUMN id SET DEFAULT nextval('public.bans_id_seq'::regclass);


--
-- Name: bounce_events id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bounce_events ALTER COLUMN id SET DEFAULT nextval('public.bounce_events_id_seq'::regclass);


--
-- Name: deliveries id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries ALTER COLUMN id SET DEFAULT nextval('public.deliveries_id_seq'::regclass);


--
-- Name: dkim_keys id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dkim_keys ALTER COLUMN id SET DEFAULT nextval('public.dkim_keys_id_seq'::regclass);


--
-- Name: domains id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.domains ALTER COLUMN id SET DEFAULT nextval('public.domains_id_seq'::regclass);


--
-- Name: inbound id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inbound ALTER COLUMN id SET DEFAULT nextval('public.inbound_id_seq'::regclass);


--
-- Name: lists id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lists ALTER COLUMN id SET DEFAULT nextval('public.lists_id_seq'::regclass);


--
-- Name: members id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.members ALTER COLUMN id SET DEFAULT nextval('public.members_id_seq'::regclass);


--
-- Name: messages id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages ALTER COLUMN id SET DEFAULT nextval('public.messages_id_seq'::regclass);


--
-- Name: moderation id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.moderation ALTER COLUMN id SET DEFAULT nextval('public.moderation_id_seq'::regclass);


--
-- Name: outbound id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbound ALTER COLUMN id SET DEFAULT nextval('public.outbound_id_seq'::regclass);


--
-- Name: tokens id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tokens ALTER COLUMN id SET DEFAULT nextval('public.tokens_id_seq'::regclass);


--
-- Data for Name: bans; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.bans VALUES (1, 1, '*@spam.example', '2026-12-03 10:20:43.603815+00');
INSERT INTO public.bans VALUES (2, NULL, 'spammer@*', '2026-12-03 10:20:43.603815+00');


--
-- Data for Name: bounce_events; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.bounce_events VALUES (1, 1, 'bob@example.com', 'hard', 1, '5.1.1', 'smtp; 550 5.1.1 no such user', 'dsn', '2026-12-03 10:20:43.599935+00');


--
-- Data for Name: deliveries; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.deliveries VALUES (7, 2, 1, 'olga@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.610318+00', NULL, NULL, NULL, '2026-12-03 10:20:43.610318+00', NULL);
INSERT INTO public.deliveries VALUES (8, 2, 1, 'mo@example.net', 'example.net', 'pending', 0, '2026-12-03 10:20:43.610318+00', NULL, NULL, NULL, '2026-12-03 10:20:43.610318+00', NULL);
INSERT INTO public.deliveries VALUES (9, 2, 1, 'alice@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.610318+00', NULL, NULL, NULL, '2026-12-03 10:20:43.610318+00', NULL);
INSERT INTO public.deliveries VALUES (10, 2, 1, 'bob@example.com', 'example.com', 'pending', 0, '2026-12-03 10:20:43.610318+00', NULL, NULL, NULL, '2026-12-03 10:20:43.610318+00', NULL);
INSERT INTO public.deliveries VALUES (11, 2, 1, 'carol@example.net', 'example.net', 'pending', 0, '2026-12-03 10:20:43.610318+00', NULL, NULL, NULL, '2026-12-03 10:20:43.610318+00', NULL);
INSERT INTO public.deliveries VALUES (12, 2, 1, 'Dave.Smith@Example.COM', 'example.com', 'pending', 0, '2026-12-03 10:20:43.610318+00', NULL, NULL, NULL, '2026-12-03 10:20:43.610318+00', NULL);
INSERT INTO public.deliveries VALUES (13, 3, 1, 'olga@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.611622+00', NULL, NULL, NULL, '2026-12-03 10:20:43.611622+00', NULL);
INSERT INTO public.deliveries VALUES (14, 3, 1, 'mo@example.net', 'example.net', 'pending', 0, '2026-12-03 10:20:43.611622+00', NULL, NULL, NULL, '2026-12-03 10:20:43.611622+00', NULL);
INSERT INTO public.deliveries VALUES (15, 3, 1, 'alice@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.611622+00', NULL, NULL, NULL, '2026-12-03 10:20:43.611622+00', NULL);
INSERT INTO public.deliveries VALUES (16, 3, 1, 'bob@example.com', 'example.com', 'pending', 0, '2026-12-03 10:20:43.611622+00', NULL, NULL, NULL, '2026-12-03 10:20:43.611622+00', NULL);
INSERT INTO public.deliveries VALUES (17, 3, 1, 'carol@example.net', 'example.net', 'pending', 0, '2026-12-03 10:20:43.611622+00', NULL, NULL, NULL, '2026-12-03 10:20:43.611622+00', NULL);
INSERT INTO public.deliveries VALUES (18, 3, 1, 'Dave.Smith@Example.COM', 'example.com', 'pending', 0, '2026-12-03 10:20:43.611622+00', NULL, NULL, NULL, '2026-12-03 10:20:43.611622+00', NULL);
INSERT INTO public.deliveries VALUES (19, 4, 1, 'olga@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.612922+00', NULL, NULL, NULL, '2026-12-03 10:20:43.612922+00', NULL);
INSERT INTO public.deliveries VALUES (20, 4, 1, 'mo@example.net', 'example.net', 'pending', 0, '2026-12-03 10:20:43.612922+00', NULL, NULL, NULL, '2026-12-03 10:20:43.612922+00', NULL);
INSERT INTO public.deliveries VALUES (21, 4, 1, 'alice@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.612922+00', NULL, NULL, NULL, '2026-12-03 10:20:43.612922+00', NULL);
INSERT INTO public.deliveries VALUES (22, 4, 1, 'bob@example.com', 'example.com', 'pending', 0, '2026-12-03 10:20:43.612922+00', NULL, NULL, NULL, '2026-12-03 10:20:43.612922+00', NULL);
INSERT INTO public.deliveries VALUES (23, 4, 1, 'carol@example.net', 'example.net', 'pending', 0, '2026-12-03 10:20:43.612922+00', NULL, NULL, NULL, '2026-12-03 10:20:43.612922+00', NULL);
INSERT INTO public.deliveries VALUES (24, 4, 1, 'Dave.Smith@Example.COM', 'example.com', 'pending', 0, '2026-12-03 10:20:43.612922+00', NULL, NULL, NULL, '2026-12-03 10:20:43.612922+00', NULL);
INSERT INTO public.deliveries VALUES (25, 5, 1, 'olga@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.614314+00', NULL, NULL, NULL, '2026-12-03 10:20:43.614314+00', NULL);
INSERT INTO public.deliveries VALUES (26, 5, 1, 'mo@example.net', 'example.net', 'pending', 0, '2026-12-03 10:20:43.614314+00', NULL, NULL, NULL, '2026-12-03 10:20:43.614314+00', NULL);
INSERT INTO public.deliveries VALUES (27, 5, 1, 'alice@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.614314+00', NULL, NULL, NULL, '2026-12-03 10:20:43.614314+00', NULL);
INSERT INTO public.deliveries VALUES (28, 5, 1, 'bob@example.com', 'example.com', 'pending', 0, '2026-12-03 10:20:43.614314+00', NULL, NULL, NULL, '2026-12-03 10:20:43.614314+00', NULL);
INSERT INTO public.deliveries VALUES (29, 5, 1, 'carol@example.net', 'example.net', 'pending', 0, '2026-12-03 10:20:43.614314+00', NULL, NULL, NULL, '2026-12-03 10:20:43.614314+00', NULL);
INSERT INTO public.deliveries VALUES (30, 5, 1, 'Dave.Smith@Example.COM', 'example.com', 'pending', 0, '2026-12-03 10:20:43.614314+00', NULL, NULL, NULL, '2026-12-03 10:20:43.614314+00', NULL);
INSERT INTO public.deliveries VALUES (31, 6, 2, 'olga@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.616175+00', NULL, NULL, NULL, '2026-12-03 10:20:43.616175+00', NULL);
INSERT INTO public.deliveries VALUES (32, 6, 2, 'alice@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.616175+00', NULL, NULL, NULL, '2026-12-03 10:20:43.616175+00', NULL);
INSERT INTO public.deliveries VALUES (33, 6, 2, 'frank@example.com', 'example.com', 'pending', 0, '2026-12-03 10:20:43.616175+00', NULL, NULL, NULL, '2026-12-03 10:20:43.616175+00', NULL);
INSERT INTO public.deliveries VALUES (34, 7, 3, 'owen@other.example', 'other.example', 'pending', 0, '2026-12-03 10:20:43.617475+00', NULL, NULL, NULL, '2026-12-03 10:20:43.617475+00', NULL);
INSERT INTO public.deliveries VALUES (35, 7, 3, 'alice@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.617475+00', NULL, NULL, NULL, '2026-12-03 10:20:43.617475+00', NULL);
INSERT INTO public.deliveries VALUES (36, 7, 3, 'gina@example.com', 'example.com', 'pending', 0, '2026-12-03 10:20:43.617475+00', NULL, NULL, NULL, '2026-12-03 10:20:43.617475+00', NULL);
INSERT INTO public.deliveries VALUES (37, 8, 3, 'owen@other.example', 'other.example', 'pending', 0, '2026-12-03 10:20:43.618936+00', NULL, NULL, NULL, '2026-12-03 10:20:43.618936+00', NULL);
INSERT INTO public.deliveries VALUES (38, 8, 3, 'alice@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.618936+00', NULL, NULL, NULL, '2026-12-03 10:20:43.618936+00', NULL);
INSERT INTO public.deliveries VALUES (39, 8, 3, 'gina@example.com', 'example.com', 'pending', 0, '2026-12-03 10:20:43.618936+00', NULL, NULL, NULL, '2026-12-03 10:20:43.618936+00', NULL);
INSERT INTO public.deliveries VALUES (40, 9, 1, 'mo@example.net', 'example.net', 'pending', 0, '2026-12-03 10:20:43.620162+00', NULL, NULL, NULL, '2026-12-03 10:20:43.620162+00', NULL);
INSERT INTO public.deliveries VALUES (41, 9, 1, 'olga@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.620162+00', NULL, NULL, NULL, '2026-12-03 10:20:43.620162+00', NULL);
INSERT INTO public.deliveries VALUES (42, 10, 1, 'mo@example.net', 'example.net', 'pending', 0, '2026-12-03 10:20:43.622416+00', NULL, NULL, NULL, '2026-12-03 10:20:43.622416+00', NULL);
INSERT INTO public.deliveries VALUES (43, 10, 1, 'olga@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.622416+00', NULL, NULL, NULL, '2026-12-03 10:20:43.622416+00', NULL);
INSERT INTO public.deliveries VALUES (44, 11, 1, 'henry@example.org', 'example.org', 'pending', 0, '2026-12-03 10:20:43.623428+00', NULL, NULL, NULL, '2026-12-03 10:20:43.623428+00', NULL);
INSERT INTO public.deliveries VALUES (4, 1, 1, 'bob@example.com', 'example.com', 'sending', 1, '2026-12-03 10:20:43.607964+00', '2026-12-03 10:21:43.624735+00', NULL, NULL, '2026-12-03 10:20:43.607964+00', NULL);
INSERT INTO public.deliveries VALUES (2, 1, 1, 'mo@example.net', 'example.net', 'sending', 1, '2026-12-03 10:20:43.607964+00', '2026-12-03 10:21:43.624735+00', NULL, NULL, '2026-12-03 10:20:43.607964+00', NULL);
INSERT INTO public.deliveries VALUES (6, 1, 1, 'Dave.Smith@Example.COM', 'example.com', 'sent', 1, '2026-12-03 10:20:43.607964+00', NULL, 250, NULL, '2026-12-03 10:20:43.607964+00', '2026-12-03 10:20:43.62576+00');
INSERT INTO public.deliveries VALUES (1, 1, 1, 'olga@example.org', 'example.org', 'failed', 1, '2026-12-03 10:20:43.607964+00', NULL, 550, '550 5.1.1 no such user', '2026-12-03 10:20:43.607964+00', '2026-12-03 10:20:43.62576+00');
INSERT INTO public.deliveries VALUES (3, 1, 1, 'alice@example.org', 'example.org', 'pending', 1, '2026-12-03 11:20:43.62571+00', NULL, 451, '451 4.3.0 try later', '2026-12-03 10:20:43.607964+00', NULL);
INSERT INTO public.deliveries VALUES (5, 1, 1, 'carol@example.net', 'example.net', 'sent', 1, '2026-12-03 10:20:43.607964+00', NULL, 250, NULL, '2026-12-03 10:20:43.607964+00', '2026-12-03 10:20:43.62576+00');


--
-- Data for Name: dkim_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.dkim_keys VALUES (1, 'lists.example.org', 'parley1', 'ed25519', '-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHGiQ1IyXICceb4uOvmv6hfL8CWSDtMKtv4LIZOG1t93
-----END PRIVATE KEY-----
', '2026-12-03 10:20:43.606797+00');


--
-- Data for Name: domains; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.domains VALUES (1, 'lists.example.org', '2026-12-03 10:20:43.4815+00');
INSERT INTO public.domains VALUES (3, 'other.example', '2026-12-03 10:20:43.487867+00');


--
-- Data for Name: ghosts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.ghosts VALUES (1, 'missing@example.org', 4);


--
-- Data for Name: goose_db_version; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.goose_db_version VALUES (1, 0, true, '2026-12-03 10:20:43.011582');
INSERT INTO public.goose_db_version VALUES (2, 1, true, '2026-12-03 10:20:43.01924');
INSERT INTO public.goose_db_version VALUES (3, 2, true, '2026-12-03 10:20:43.040684');
INSERT INTO public.goose_db_version VALUES (4, 3, true, '2026-12-03 10:20:43.10511');
INSERT INTO public.goose_db_version VALUES (5, 4, true, '2026-12-03 10:20:43.114435');
INSERT INTO public.goose_db_version VALUES (6, 5, true, '2026-12-03 10:20:43.121303');
INSERT INTO public.goose_db_version VALUES (7, 6, true, '2026-12-03 10:20:43.13044');
INSERT INTO public.goose_db_version VALUES (8, 7, true, '2026-12-03 10:20:43.136867');
INSERT INTO public.goose_db_version VALUES (9, 8, true, '2026-12-03 10:20:43.138581');
INSERT INTO public.goose_db_version VALUES (10, 9, true, '2026-12-03 10:20:43.139969');
INSERT INTO public.goose_db_version VALUES (11, 10, true, '2026-12-03 10:20:43.153906');
INSERT INTO public.goose_db_version VALUES (12, 11, true, '2026-12-03 10:20:43.155778');
INSERT INTO public.goose_db_version VALUES (13, 12, true, '2026-12-03 10:20:43.15902');
INSERT INTO public.goose_db_version VALUES (14, 13, true, '2026-12-03 10:20:43.164284');
INSERT INTO public.goose_db_version VALUES (15, 14, true, '2026-12-03 10:20:43.165375');
INSERT INTO public.goose_db_version VALUES (16, 15, true, '2026-12-03 10:20:43.166487');
INSERT INTO public.goose_db_version VALUES (17, 16, true, '2026-12-03 10:20:43.168672');
INSERT INTO public.goose_db_version VALUES (18, 17, true, '2026-12-03 10:20:43.180952');
INSERT INTO public.goose_db_version VALUES (19, 18, true, '2026-12-03 10:20:43.183548');


--
-- Data for Name: inbound; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.inbound VALUES (1, 1, 'join', 'dev-join@lists.example.org', '', 'henry@example.org', '\xc269e3888f189b67c9c2688827ff77f8118534ac5a2a7927196a5766cb5f2d79', '\x46726f6d3a2068656e7279406578616d706c652e6f72670d0a546f3a206465762d6a6f696e406c697374732e6578616d706c652e6f72670d0a5375626a6563743a206a6f696e0d0a4d6573736167652d49443a203c313739363239333234333539333734333132372e68656e7279406578616d706c652e6f72673e0d0a446174653a204d6f6e2c203330204e6f7620323032362031313a30303a3030202b303030300d0a0d0a0d0a', 'done', '2026-12-03 10:20:43.593845+00', 0, '');
INSERT INTO public.inbound VALUES (2, 1, 'bounce', 'dev-bounces+bob=example.com@lists.example.org', 'bob=example.com', '', '\x1d3ce7120fae469ba6cbeb04b1a689da797f5eb4c924e3c73d1b3e26a171bdf7', '\x46726f6d3a204d41494c45522d4441454d4f4e406d782e6578616d706c652e636f6d0d0a546f3a206465762d626f756e6365732b626f623d6578616d706c652e636f6d406c697374732e6578616d706c652e6f72670d0a5375626a6563743a20556e64656c697665726564204d61696c2052657475726e656420746f2053656e6465720d0a4d6573736167652d49443a203c6231406d782e6578616d706c652e636f6d3e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a206d756c7469706172742f7265706f72743b207265706f72742d747970653d64656c69766572792d7374617475733b20626f756e646172793d224242220d0a0d0a2d2d42420d0a436f6e74656e742d547970653a20746578742f706c61696e0d0a0d0a49276d20736f7272792e0d0a2d2d42420d0a436f6e74656e742d547970653a206d6573736167652f64656c69766572792d7374617475730d0a0d0a5265706f7274696e672d4d54413a20646e733b206d782e6578616d706c652e636f6d0d0a0d0a46696e616c2d526563697069656e743a207266633832323b20626f62406578616d706c652e636f6d0d0a416374696f6e3a206661696c65640d0a5374617475733a20352e312e310d0a446961676e6f737469632d436f64653a20736d74703b2035353020352e312e31206e6f207375636820757365720d0a0d0a2d2d42422d2d0d0a', 'done', '2026-12-03 10:20:43.599365+00', 0, '');
INSERT INTO public.inbound VALUES (3, 1, 'request', 'dev-request@lists.example.org', '', 'ivan@example.com', '\xb30cfce6499e725778ee9ac24b256e1a5a34130f602be9b8e2a8f08228afad08', '\x46726f6d3a206976616e406578616d706c652e636f6d0d0a546f3a206465762d72657175657374406c697374732e6578616d706c652e6f72670d0a5375626a6563743a2068656c700d0a4d6573736167652d49443a203c313739363239333234333630333330383039362e6976616e406578616d706c652e636f6d3e0d0a446174653a204d6f6e2c203330204e6f7620323032362031313a30303a3030202b303030300d0a0d0a68656c700d0a', 'new', '2026-12-03 10:20:43.603421+00', 0, '');


--
-- Data for Name: list_templates; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.list_templates VALUES (1, 'welcome', 'Welcome to {{.List}}!', '2026-12-03 10:20:43.604413+00');


--
-- Data for Name: lists; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.lists VALUES (2, 1, 'news', 'news@lists.example.org', '', '', 'announce', 'public', '', 1796293243, 2, '2026-12-03 10:20:43.486403+00', '2026-12-03 10:20:43.486403+00', 'reject', 0, false, 'policy', true, '', 'owners', 'confirm');
INSERT INTO public.lists VALUES (3, 3, 'open', 'open@other.example', '', '', 'open', 'private', '', 1796293243, 3, '2026-12-03 10:20:43.487839+00', '2026-12-03 10:20:43.489232+00', 'hold', 0, false, 'policy', true, '', 'owners', 'confirm');
INSERT INTO public.lists VALUES (1, 1, 'dev', 'dev@lists.example.org', '', '', 'members', 'public', '', 1796293243, 6, '2026-12-03 10:20:43.481454+00', '2026-12-03 10:20:43.481454+00', 'hold', 0, false, 'policy', true, '', 'owners', 'confirm');


--
-- Data for Name: members; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.members VALUES (1, 1, 'olga@example.org', 'olga@example.org', '', 'owner', 'regular', 'active', false, '2026-12-03 10:20:43.485443+00', '2026-12-03 10:20:43.485443+00', '', true, '');
INSERT INTO public.members VALUES (2, 1, 'mo@example.net', 'mo@example.net', '', 'moderator', 'regular', 'active', false, '2026-12-03 10:20:43.485443+00', '2026-12-03 10:20:43.485443+00', '', true, '');
INSERT INTO public.members VALUES (3, 1, 'alice@example.org', 'alice@example.org', '', 'member', 'regular', 'active', false, '2026-12-03 10:20:43.485443+00', '2026-12-03 10:20:43.485443+00', '', true, '');
INSERT INTO public.members VALUES (5, 1, 'carol@example.net', 'carol@example.net', '', 'member', 'regular', 'active', false, '2026-12-03 10:20:43.485443+00', '2026-12-03 10:20:43.485443+00', '', true, '');
INSERT INTO public.members VALUES (6, 1, 'Dave.Smith@Example.COM', 'Dave.Smith@example.com', '', 'member', 'regular', 'active', false, '2026-12-03 10:20:43.485443+00', '2026-12-03 10:20:43.485443+00', '', true, '');
INSERT INTO public.members VALUES (8, 2, 'olga@example.org', 'olga@example.org', '', 'owner', 'regular', 'active', false, '2026-12-03 10:20:43.487522+00', '2026-12-03 10:20:43.487522+00', '', true, '');
INSERT INTO public.members VALUES (9, 2, 'alice@example.org', 'alice@example.org', '', 'member', 'regular', 'active', false, '2026-12-03 10:20:43.487522+00', '2026-12-03 10:20:43.487522+00', '', true, '');
INSERT INTO public.members VALUES (10, 2, 'frank@example.com', 'frank@example.com', '', 'member', 'regular', 'active', false, '2026-12-03 10:20:43.487522+00', '2026-12-03 10:20:43.487522+00', '', true, '');
INSERT INTO public.members VALUES (11, 3, 'owen@other.example', 'owen@other.example', '', 'owner', 'regular', 'active', false, '2026-12-03 10:20:43.488697+00', '2026-12-03 10:20:43.488697+00', '', true, '');
INSERT INTO public.members VALUES (12, 3, 'alice@example.org', 'alice@example.org', '', 'member', 'regular', 'active', false, '2026-12-03 10:20:43.488697+00', '2026-12-03 10:20:43.488697+00', '', true, '');
INSERT INTO public.members VALUES (13, 3, 'gina@example.com', 'gina@example.com', '', 'member', 'regular', 'active', false, '2026-12-03 10:20:43.488697+00', '2026-12-03 10:20:43.488697+00', '', true, '');
INSERT INTO public.members VALUES (7, 1, 'erin@example.org', 'erin@example.org', '', 'member', 'digest', 'active', false, '2026-12-03 10:20:43.485443+00', '2026-12-03 10:20:43.490566+00', '', true, '');
INSERT INTO public.members VALUES (4, 1, 'bob@example.com', 'bob@example.com', '', 'member', 'regular', 'active', false, '2026-12-03 10:20:43.485443+00', '2026-12-03 10:20:43.485443+00', '', true, '$2a$10$miB271AisV4EdDnNtMrHoeL5xyXhhoh6uOYHvnRf8eoSi5C5sJlUa');


--
-- Data for Name: messages; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.messages VALUES (1, 1, 1, 'q1@example.org', false, '\xa0257dfb597c270070eb64318b09b8dfff0286e2820b4f4739b56f1fdf81e160', '\x46726f6d3a20616c696365406578616d706c652e6f72670d0a546f3a20646576406c697374732e6578616d706c652e6f72670d0a5375626a6563743a204275696c64206661696c73206f6e2061726d36340d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31343a3030202b303030300d0a4d6573736167652d49443a203c7131406578616d706c652e6f72673e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a546865206275696c64206661696c7320776974680d0a0d0a20206c643a20756e6b6e6f776e206f7074696f6e0d0a0d0a416e7920696465613f0d0a', 273, 214, '2026-11-30 12:00:00+00', '2026-11-30 10:14:00+00', 'alice@example.org', '', 'Build fails on arm64', 'build fails on arm64', NULL, '{}', NULL, 1, '{"parts": [{"path": "", "size": 59, "type": "text/plain", "charset": "utf-8"}], "total": 1}', 'smtp', '\x025c01d0b1eab00d00144275696c64206661696c73206f6e2061726d3634020005616c6963650b6578616d706c652e6f72670000020003646576116c697374732e6578616d706c652e6f72670000000e7131406578616d706c652e6f72675b7b2273223a7b2254797065223a2274657874222c2253756274797065223a22706c61696e222c22506172616d73223a7b2263686172736574223a227574662d38227d2c224944223a22222c224465736372697074696f6e223a22222c22456e636f64696e67223a22222c2253697a65223a35392c224d657373616765524643383232223a6e756c6c2c2254657874223a7b224e756d4c696e6573223a357d2c22457874656e646564223a7b22446973706f736974696f6e223a6e756c6c2c224c616e6775616765223a6e756c6c2c224c6f636174696f6e223a22227d7d7d5d');
INSERT INTO public.messages VALUES (2, 1, 2, 'r1@example.com', false, '\x8f73a4db96bd876c423436f0584467b4f53ea4b3fc89f6c3730590cec238a920', '\x46726f6d3a20626f62406578616d706c652e636f6d0d0a546f3a20646576406c697374732e6578616d706c652e6f72670d0a5375626a6563743a2052653a204275696c64206661696c73206f6e2061726d36340d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31343a3030202b303030300d0a4d6573736167652d49443a203c7231406578616d706c652e636f6d3e0d0a496e2d5265706c792d546f3a203c7131406578616d706c652e6f72673e0d0a5265666572656e6365733a203c7131406578616d706c652e6f72673e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a5768696368206c696e6b65723f0d0a', 292, 277, '2026-11-30 12:00:00+00', '2026-11-30 10:14:00+00', 'bob@example.com', '', 'Re: Build fails on arm64', 'build fails on arm64', 'q1@example.org', '{q1@example.org}', 'q1@example.org', 1, '{"parts": [{"path": "", "size": 15, "type": "text/plain", "charset": "utf-8"}], "total": 1}', 'smtp', '\x026d01d0b1eab00d001852653a204275696c64206661696c73206f6e2061726d3634020003626f620b6578616d706c652e636f6d0000020003646576116c697374732e6578616d706c652e6f72670000020e7131406578616d706c652e6f72670e7231406578616d706c652e636f6d5b7b2273223a7b2254797065223a2274657874222c2253756274797065223a22706c61696e222c22506172616d73223a7b2263686172736574223a227574662d38227d2c224944223a22222c224465736372697074696f6e223a22222c22456e636f64696e67223a22222c2253697a65223a31352c224d657373616765524643383232223a6e756c6c2c2254657874223a7b224e756d4c696e6573223a317d2c22457874656e646564223a7b22446973706f736974696f6e223a6e756c6c2c224c616e6775616765223a6e756c6c2c224c6f636174696f6e223a22227d7d7d5d');
INSERT INTO public.messages VALUES (3, 1, 3, 'r2@example.org', false, '\xbabe03f79ebfdae25dea040d2a963d72db6f8a15810c36e34fba38ae3612d8a2', '\x46726f6d3a20616c696365406578616d706c652e6f72670d0a546f3a20646576406c697374732e6578616d706c652e6f72670d0a5375626a6563743a2052653a204275696c64206661696c73206f6e2061726d36340d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31343a3030202b303030300d0a4d6573736167652d49443a203c7232406578616d706c652e6f72673e0d0a496e2d5265706c792d546f3a203c7231406578616d706c652e636f6d3e0d0a5265666572656e6365733a203c7231406578616d706c652e636f6d3e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a676f6c642c2049207468696e6b2e20c39c6265722d616e6e6f79696e672e0d0a', 311, 279, '2026-11-30 12:00:00+00', '2026-11-30 10:14:00+00', 'alice@example.org', '', 'Re: Build fails on arm64', 'build fails on arm64', 'r1@example.com', '{r1@example.com}', 'r1@example.com', 1, '{"parts": [{"path": "", "size": 32, "type": "text/plain", "charset": "utf-8"}], "total": 1}', 'smtp', '\x026f01d0b1eab00d001852653a204275696c64206661696c73206f6e2061726d3634020005616c6963650b6578616d706c652e6f72670000020003646576116c697374732e6578616d706c652e6f72670000020e7231406578616d706c652e636f6d0e7232406578616d706c652e6f72675b7b2273223a7b2254797065223a2274657874222c2253756274797065223a22706c61696e222c22506172616d73223a7b2263686172736574223a227574662d38227d2c224944223a22222c224465736372697074696f6e223a22222c22456e636f64696e67223a22222c2253697a65223a33322c224d657373616765524643383232223a6e756c6c2c2254657874223a7b224e756d4c696e6573223a317d2c22457874656e646564223a7b22446973706f736974696f6e223a6e756c6c2c224c616e6775616765223a6e756c6c2c224c6f636174696f6e223a22227d7d7d5d');
INSERT INTO public.messages VALUES (4, 1, 4, 'r3@example.net', false, '\x390274ec1c8bc81c7f5d2dbad0765cf6c1944b2ffd2a1967ecb4a846c230a4e4', '\x46726f6d3a206361726f6c406578616d706c652e6e65740d0a546f3a20646576406c697374732e6578616d706c652e6f72670d0a5375626a6563743a2052653a2072656c6561736520706c616e0d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31343a3030202b303030300d0a4d6573736167652d49443a203c7233406578616d706c652e6e65743e0d0a496e2d5265706c792d546f3a203c6d697373696e67406578616d706c652e6f72673e0d0a5265666572656e6365733a203c6d697373696e67406578616d706c652e6f72673e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a4167726565642e0d0a', 290, 281, '2026-11-30 12:00:00+00', '2026-11-30 10:14:00+00', 'carol@example.net', '', 'Re: release plan', 'release plan', 'missing@example.org', '{missing@example.org}', 'missing@example.org', 4, '{"parts": [{"path": "", "size": 9, "type": "text/plain", "charset": "utf-8"}], "total": 1}', 'smtp', '\x026c01d0b1eab00d001052653a2072656c6561736520706c616e0200056361726f6c0b6578616d706c652e6e65740000020003646576116c697374732e6578616d706c652e6f7267000002136d697373696e67406578616d706c652e6f72670e7233406578616d706c652e6e65745b7b2273223a7b2254797065223a2274657874222c2253756274797065223a22706c61696e222c22506172616d73223a7b2263686172736574223a227574662d38227d2c224944223a22222c224465736372697074696f6e223a22222c22456e636f64696e67223a22222c2253697a65223a392c224d657373616765524643383232223a6e756c6c2c2254657874223a7b224e756d4c696e6573223a317d2c22457874656e646564223a7b22446973706f736974696f6e223a6e756c6c2c224c616e6775616765223a6e756c6c2c224c6f636174696f6e223a22227d7d7d5d');
INSERT INTO public.messages VALUES (5, 1, 5, 'r4@example.com', false, '\xe5e4375d69810c3e48b6402dfda8f72c69dd9c1a21d86b412a3683623a2f34f1', '\x46726f6d3a20446176652e536d697468404578616d706c652e434f4d0d0a546f3a20646576406c697374732e6578616d706c652e6f72670d0a5375626a6563743a2052653a2072656c6561736520706c616e0d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31343a3030202b303030300d0a4d6573736167652d49443a203c7234406578616d706c652e636f6d3e0d0a496e2d5265706c792d546f3a203c6d697373696e67406578616d706c652e6f72673e0d0a5265666572656e6365733a203c6d697373696e67406578616d706c652e6f72673e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a2b310d0a', 290, 286, '2026-11-30 12:00:00+00', '2026-11-30 10:14:00+00', 'Dave.Smith@Example.COM', '', 'Re: release plan', 'release plan', 'missing@example.org', '{missing@example.org}', 'missing@example.org', 4, '{"parts": [{"path": "", "size": 4, "type": "text/plain", "charset": "utf-8"}], "total": 1}', 'smtp', '\x027101d0b1eab00d001052653a2072656c6561736520706c616e02000a446176652e536d6974680b4578616d706c652e434f4d0000020003646576116c697374732e6578616d706c652e6f7267000002136d697373696e67406578616d706c652e6f72670e7234406578616d706c652e636f6d5b7b2273223a7b2254797065223a2274657874222c2253756274797065223a22706c61696e222c22506172616d73223a7b2263686172736574223a227574662d38227d2c224944223a22222c224465736372697074696f6e223a22222c22456e636f64696e67223a22222c2253697a65223a342c224d657373616765524643383232223a6e756c6c2c2254657874223a7b224e756d4c696e6573223a317d2c22457874656e646564223a7b22446973706f736974696f6e223a6e756c6c2c224c616e6775616765223a6e756c6c2c224c6f636174696f6e223a22227d7d7d5d');
INSERT INTO public.messages VALUES (6, 2, 1, 'ann1@example.org', false, '\x8b4d32e1ac6944045ef3617c2eade05821de77f6942b525f8d741a183dcabb5e', '\x46726f6d3a206f6c6761406578616d706c652e6f72670d0a546f3a206e657773406c697374732e6578616d706c652e6f72670d0a5375626a6563743a2056657273696f6e2032206973206f75740d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31363a3030202b303030300d0a4d6573736167652d49443a203c616e6e31406578616d706c652e6f72673e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a476574206974207768696c65206974277320686f742e0d0a', 236, 212, '2026-11-30 12:00:00+00', '2026-11-30 10:16:00+00', 'olga@example.org', '', 'Version 2 is out', 'version 2 is out', NULL, '{}', NULL, 1, '{"parts": [{"path": "", "size": 24, "type": "text/plain", "charset": "utf-8"}], "total": 1}', 'smtp', '\x025a01c0b3eab00d001056657273696f6e2032206973206f75740200046f6c67610b6578616d706c652e6f726700000200046e657773116c697374732e6578616d706c652e6f726700000010616e6e31406578616d706c652e6f72675b7b2273223a7b2254797065223a2274657874222c2253756274797065223a22706c61696e222c22506172616d73223a7b2263686172736574223a227574662d38227d2c224944223a22222c224465736372697074696f6e223a22222c22456e636f64696e67223a22222c2253697a65223a32342c224d657373616765524643383232223a6e756c6c2c2254657874223a7b224e756d4c696e6573223a317d2c22457874656e646564223a7b22446973706f736974696f6e223a6e756c6c2c224c616e6775616765223a6e756c6c2c224c6f636174696f6e223a22227d7d7d5d');
INSERT INTO public.messages VALUES (7, 3, 1, 'o1@example.com', false, '\x17ecf09b155722f76f4150c6a833a91cf179f14f6be2375140e8863b85fe250a', '\x46726f6d3a2067696e61406578616d706c652e636f6d0d0a546f3a206f70656e406f746865722e6578616d706c650d0a5375626a6563743a2048656c6c6f0d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31343a3030202b303030300d0a4d6573736167652d49443a203c6f31406578616d706c652e636f6d3e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a486920616c6c0d0a', 203, 195, '2026-11-30 12:00:00+00', '2026-11-30 10:14:00+00', 'gina@example.com', '', 'Hello', 'hello', NULL, '{}', NULL, 1, '{"parts": [{"path": "", "size": 8, "type": "text/plain", "charset": "utf-8"}], "total": 1}', 'smtp', '\x024901d0b1eab00d000548656c6c6f02000467696e610b6578616d706c652e636f6d00000200046f70656e0d6f746865722e6578616d706c650000000e6f31406578616d706c652e636f6d5b7b2273223a7b2254797065223a2274657874222c2253756274797065223a22706c61696e222c22506172616d73223a7b2263686172736574223a227574662d38227d2c224944223a22222c224465736372697074696f6e223a22222c22456e636f64696e67223a22222c2253697a65223a382c224d657373616765524643383232223a6e756c6c2c2254657874223a7b224e756d4c696e6573223a317d2c22457874656e646564223a7b22446973706f736974696f6e223a6e756c6c2c224c616e6775616765223a6e756c6c2c224c6f636174696f6e223a22227d7d7d5d');
INSERT INTO public.messages VALUES (8, 3, 2, 'o2@elsewhere.example', false, '\x283e91e3f0b04fef6fe645a3f5b0f7a52421ee1686c0f4470d04be25a754e407', '\x46726f6d3a20737472616e67657240656c736577686572652e6578616d706c650d0a546f3a206f70656e406f746865722e6578616d706c650d0a5375626a6563743a2052653a2048656c6c6f0d0a446174653a204d6f6e2c203330204e6f7620323032362031303a32303a3030202b303030300d0a4d6573736167652d49443a203c6f3240656c736577686572652e6578616d706c653e0d0a496e2d5265706c792d546f3a203c6f31406578616d706c652e636f6d3e0d0a5265666572656e6365733a203c6f31406578616d706c652e636f6d3e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a48692067696e610d0a', 285, 276, '2026-11-30 12:00:00+00', '2026-11-30 10:20:00+00', 'stranger@elsewhere.example', '', 'Re: Hello', 'hello', 'o1@example.com', '{o1@example.com}', 'o1@example.com', 1, '{"parts": [{"path": "", "size": 9, "type": "text/plain", "charset": "utf-8"}], "total": 1}', 'smtp', '\x026c01a0b7eab00d000952653a2048656c6c6f020008737472616e67657211656c736577686572652e6578616d706c6500000200046f70656e0d6f746865722e6578616d706c650000020e6f31406578616d706c652e636f6d146f3240656c736577686572652e6578616d706c655b7b2273223a7b2254797065223a2274657874222c2253756274797065223a22706c61696e222c22506172616d73223a7b2263686172736574223a227574662d38227d2c224944223a22222c224465736372697074696f6e223a22222c22456e636f64696e67223a22222c2253697a65223a392c224d657373616765524643383232223a6e756c6c2c2254657874223a7b224e756d4c696e6573223a317d2c22457874656e646564223a7b22446973706f736974696f6e223a6e756c6c2c224c616e6775616765223a6e756c6c2c224c6f636174696f6e223a22227d7d7d5d');


--
-- Data for Name: moderation; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.moderation VALUES (2, 1, 'held', 'nonmember', 'posts from non-members are approved by a moderator', 'zed@example.org', 'zed@example.org', 'Question from outside', 'h2@example.org', '\x05955132388807e276eddfabc43d6fae6cec89641a24fa551422339611bea5ee', '\x46726f6d3a207a6564406578616d706c652e6f72670d0a546f3a20646576406c697374732e6578616d706c652e6f72670d0a5375626a6563743a205175657374696f6e2066726f6d206f7574736964650d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31343a3030202b303030300d0a4d6573736167652d49443a203c6832406578616d706c652e6f72673e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a4d617920492061736b20686572653f0d0a', '2026-12-03 10:20:43.588702+00', NULL, NULL, NULL);
INSERT INTO public.moderation VALUES (1, 1, 'discarded', 'nonmember', 'posts from non-members are approved by a moderator', 'mallory@spam.example', 'mallory@spam.example', 'cheap pills', 'h1@spam.example', '\xab3e608d0e5a8a0cd017abad6e63802bdc96a5d5b13e49b5fdaea11eb33b32e6', '\x46726f6d3a206d616c6c6f7279407370616d2e6578616d706c650d0a546f3a20646576406c697374732e6578616d706c652e6f72670d0a5375626a6563743a2063686561702070696c6c730d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31353a3030202b303030300d0a4d6573736167652d49443a203c6831407370616d2e6578616d706c653e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a627579206e6f770d0a', '2026-12-03 10:20:43.585493+00', '2026-12-03 10:20:43.592582+00', 'olga@example.org', '');


--
-- Data for Name: outbound; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.outbound VALUES (12, 'notice', 1, NULL, '{henry@example.org}', 'dev-bounces@lists.example.org', '\x46726f6d3a206465762d72657175657374406c697374732e6578616d706c652e6f72670d0a546f3a2068656e7279406578616d706c652e6f72670d0a5375626a6563743a2052653a206a6f696e0d0a446174653a205468752c2030332044656320323032362031303a32303a3433202b303030300d0a4d6573736167652d49443a203c7061726c65792d393131336531623335643837356237353561656332663533407061726c65792e746573743e0d0a582d4c6f6f703a206465762d72657175657374406c697374732e6578616d706c652e6f72670d0a4175746f2d5375626d69747465643a206175746f2d7265706c6965640d0a507265636564656e63653a2062756c6b0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a436f6e74656e742d5472616e736665722d456e636f64696e673a20386269740d0a0d0a3e207375627363726962650d0a4120636f6e6669726d6174696f6e207761732073656e7420746f2068656e7279406578616d706c652e6f72672e204e6f7468696e67206368616e67657320756e74696c20697420697320616e7377657265642e0d0a0d0a', 'pending', 0, '2026-12-03 11:20:43.607603+00', NULL, NULL, '2026-12-03 10:20:43.594991+00');
INSERT INTO public.outbound VALUES (1, 'post', 1, 1, NULL, '', NULL, 'expanded', 0, '2026-12-03 10:20:43.558838+00', NULL, NULL, '2026-12-03 10:20:43.558838+00');
INSERT INTO public.outbound VALUES (2, 'post', 1, 2, NULL, '', NULL, 'expanded', 0, '2026-12-03 10:20:43.568354+00', NULL, NULL, '2026-12-03 10:20:43.568354+00');
INSERT INTO public.outbound VALUES (3, 'post', 1, 3, NULL, '', NULL, 'expanded', 0, '2026-12-03 10:20:43.571322+00', NULL, NULL, '2026-12-03 10:20:43.571322+00');
INSERT INTO public.outbound VALUES (4, 'post', 1, 4, NULL, '', NULL, 'expanded', 0, '2026-12-03 10:20:43.573451+00', NULL, NULL, '2026-12-03 10:20:43.573451+00');
INSERT INTO public.outbound VALUES (5, 'post', 1, 5, NULL, '', NULL, 'expanded', 0, '2026-12-03 10:20:43.575921+00', NULL, NULL, '2026-12-03 10:20:43.575921+00');
INSERT INTO public.outbound VALUES (6, 'post', 2, 6, NULL, '', NULL, 'expanded', 0, '2026-12-03 10:20:43.57848+00', NULL, NULL, '2026-12-03 10:20:43.57848+00');
INSERT INTO public.outbound VALUES (7, 'post', 3, 7, NULL, '', NULL, 'expanded', 0, '2026-12-03 10:20:43.581264+00', NULL, NULL, '2026-12-03 10:20:43.581264+00');
INSERT INTO public.outbound VALUES (8, 'post', 3, 8, NULL, '', NULL, 'expanded', 0, '2026-12-03 10:20:43.583368+00', NULL, NULL, '2026-12-03 10:20:43.583368+00');
INSERT INTO public.outbound VALUES (10, 'notice', 1, NULL, '{mo@example.net,olga@example.org}', 'dev-bounces@lists.example.org', '\x46726f6d3a206465762d636f6e6669726d2b6a7567726875326971657035726b36756d6b6764706e3567337377777a73376e406c697374732e6578616d706c652e6f72670d0a546f3a206465762d6f776e6572406c697374732e6578616d706c652e6f72670d0a5375626a6563743a205b646576406c697374732e6578616d706c652e6f72675d20706f73742068656c6420666f7220617070726f76616c3a205175657374696f6e2066726f6d206f7574736964650d0a446174653a204d6f6e2c203330204e6f7620323032362031323a30303a3030202b303030300d0a4d6573736167652d49443a203c7061726c65792d373832386639313739643634613834313634366534306461407061726c65792e746573743e0d0a5265706c792d546f3a206465762d636f6e6669726d2b6a7567726875326971657035726b36756d6b6764706e3567337377777a73376e406c697374732e6578616d706c652e6f72670d0a4175746f2d5375626d69747465643a206175746f2d67656e6572617465640d0a507265636564656e63653a2062756c6b0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a206d756c7469706172742f6d697865643b20626f756e646172793d227061726c65792d3638353730646365393237383233666331663631653961353737653433653538220d0a0d0a2d2d7061726c65792d36383537306463653932373832336663316636316539613537376534336535380d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a436f6e74656e742d5472616e736665722d456e636f64696e673a20386269740d0a0d0a4120706f737420746f20646576406c697374732e6578616d706c652e6f72672069732077616974696e6720666f722061206d6f64657261746f722e0d0a0d0a202046726f6d3a202020207a6564406578616d706c652e6f72670d0a20205375626a6563743a205175657374696f6e2066726f6d206f7574736964650d0a2020526561736f6e3a2020706f7374732066726f6d206e6f6e2d6d656d626572732061726520617070726f7665642062792061206d6f64657261746f720d0a202048656c642061733a20320d0a0d0a546f20617070726f76652069742c206a757374207265706c7920746f2074686973206d6573736167652e0d0a546f2072656a6563742069742c207265706c792077697468202272656a6563742220616e64206120726561736f6e206f6e20746865206669727374206c696e653b20746f2064726f702069742073696c656e746c792c207265706c79202264697363617264222e0d0a4f6e20746865207365727665723a207061726c65792068656c6420617070726f76657c72656a6563747c6469736361726420320d0a0d0a54686520706f73742069732061747461636865642e0d0a0d0a2d2d7061726c65792d36383537306463653932373832336663316636316539613537376534336535380d0a436f6e74656e742d547970653a206d6573736167652f7266633832320d0a436f6e74656e742d446973706f736974696f6e3a20696e6c696e650d0a0d0a46726f6d3a207a6564406578616d706c652e6f72670d0a546f3a20646576406c697374732e6578616d706c652e6f72670d0a5375626a6563743a205175657374696f6e2066726f6d206f7574736964650d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31343a3030202b303030300d0a4d6573736167652d49443a203c6832406578616d706c652e6f72673e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a4d617920492061736b20686572653f0d0a2d2d7061726c65792d36383537306463653932373832336663316636316539613537376534336535382d2d0d0a', 'expanded', 0, '2026-12-03 10:20:43.588702+00', NULL, NULL, '2026-12-03 10:20:43.588702+00');
INSERT INTO public.outbound VALUES (11, 'notice', 1, NULL, '{henry@example.org}', 'dev-bounces@lists.example.org', '\x46726f6d3a206465762d636f6e6669726d2b6e7766677967616a7437767671776a66617862776e6175346770797a63727179406c697374732e6578616d706c652e6f72670d0a546f3a2068656e7279406578616d706c652e6f72670d0a5375626a6563743a20636f6e6669726d206e7766677967616a7437767671776a66617862776e6175346770797a637271790d0a446174653a205468752c2030332044656320323032362031303a32303a3433202b303030300d0a4d6573736167652d49443a203c7061726c65792d643937633937663436666163663662353961323935643861407061726c65792e746573743e0d0a5265706c792d546f3a206465762d636f6e6669726d2b6e7766677967616a7437767671776a66617862776e6175346770797a63727179406c697374732e6578616d706c652e6f72670d0a582d4c6f6f703a206465762d72657175657374406c697374732e6578616d706c652e6f72670d0a4175746f2d5375626d69747465643a206175746f2d67656e6572617465640d0a507265636564656e63653a2062756c6b0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a436f6e74656e742d5472616e736665722d456e636f64696e673a20386269740d0a0d0a536f6d656f6e6520287065726861707320796f75292061736b656420746f207375627363726962652068656e7279406578616d706c652e6f726720746f20646576406c697374732e6578616d706c652e6f72672e0d0a0d0a546f20636f6e6669726d2c206a757374207265706c7920746f2074686973206d6573736167652c206f722073656e642061206d65737361676520746f0d0a20206465762d636f6e6669726d2b6e7766677967616a7437767671776a66617862776e6175346770797a63727179406c697374732e6578616d706c652e6f72670d0a0d0a496620796f7520646964206e6f742061736b20666f7220746869732c2069676e6f72652074686973206d6573736167653a206e6f7468696e67206368616e6765732e0d0a5468652072657175657374206578706972657320696e20373268306d30732e0d0a', 'expanded', 0, '2026-12-03 10:20:43.594991+00', NULL, NULL, '2026-12-03 10:20:43.594991+00');
INSERT INTO public.outbound VALUES (9, 'notice', 1, NULL, '{mo@example.net,olga@example.org}', 'dev-bounces@lists.example.org', '\x46726f6d3a206465762d636f6e6669726d2b32726b6a77647a6779673761366f787a666265376237786a6a64356369673567406c697374732e6578616d706c652e6f72670d0a546f3a206465762d6f776e6572406c697374732e6578616d706c652e6f72670d0a5375626a6563743a205b646576406c697374732e6578616d706c652e6f72675d20706f73742068656c6420666f7220617070726f76616c3a2063686561702070696c6c730d0a446174653a204d6f6e2c203330204e6f7620323032362031323a30303a3030202b303030300d0a4d6573736167652d49443a203c7061726c65792d653030363465393263353862666439386265333664663662407061726c65792e746573743e0d0a5265706c792d546f3a206465762d636f6e6669726d2b32726b6a77647a6779673761366f787a666265376237786a6a64356369673567406c697374732e6578616d706c652e6f72670d0a4175746f2d5375626d69747465643a206175746f2d67656e6572617465640d0a507265636564656e63653a2062756c6b0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a206d756c7469706172742f6d697865643b20626f756e646172793d227061726c65792d3963663639626364366439633234316631303565636432356238373136373935220d0a0d0a2d2d7061726c65792d39636636396263643664396332343166313035656364323562383731363739350d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a436f6e74656e742d5472616e736665722d456e636f64696e673a20386269740d0a0d0a4120706f737420746f20646576406c697374732e6578616d706c652e6f72672069732077616974696e6720666f722061206d6f64657261746f722e0d0a0d0a202046726f6d3a202020206d616c6c6f7279407370616d2e6578616d706c650d0a20205375626a6563743a2063686561702070696c6c730d0a2020526561736f6e3a2020706f7374732066726f6d206e6f6e2d6d656d626572732061726520617070726f7665642062792061206d6f64657261746f720d0a202048656c642061733a20310d0a0d0a546f20617070726f76652069742c206a757374207265706c7920746f2074686973206d6573736167652e0d0a546f2072656a6563742069742c207265706c792077697468202272656a6563742220616e64206120726561736f6e206f6e20746865206669727374206c696e653b20746f2064726f702069742073696c656e746c792c207265706c79202264697363617264222e0d0a4f6e20746865207365727665723a207061726c65792068656c6420617070726f76657c72656a6563747c6469736361726420310d0a0d0a54686520706f73742069732061747461636865642e0d0a0d0a2d2d7061726c65792d39636636396263643664396332343166313035656364323562383731363739350d0a436f6e74656e742d547970653a206d6573736167652f7266633832320d0a436f6e74656e742d446973706f736974696f6e3a20696e6c696e650d0a0d0a46726f6d3a206d616c6c6f7279407370616d2e6578616d706c650d0a546f3a20646576406c697374732e6578616d706c652e6f72670d0a5375626a6563743a2063686561702070696c6c730d0a446174653a204d6f6e2c203330204e6f7620323032362031303a31353a3030202b303030300d0a4d6573736167652d49443a203c6831407370616d2e6578616d706c653e0d0a4d494d452d56657273696f6e3a20312e300d0a436f6e74656e742d547970653a20746578742f706c61696e3b20636861727365743d7574662d380d0a0d0a627579206e6f770d0a2d2d7061726c65792d39636636396263643664396332343166313035656364323562383731363739352d2d0d0a', 'expanded', 0, '2026-12-03 10:20:43.585493+00', NULL, NULL, '2026-12-03 10:20:43.585493+00');


--
-- Data for Name: reply_counts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.reply_counts VALUES ('henry@example.org', '2026-12-03', 2);


--
-- Data for Name: secrets; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.secrets VALUES ('unsubscribe', '\x0cb85bed32e6a68ce307ed3afe09896e8aafc3df3e4b2526406972583a1118e2', '2026-12-03 10:20:43.604905+00');


--
-- Data for Name: tokens; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.tokens VALUES (1, '\x53e3df34eff89dbbbdde5c7dbb50a1a03a6953dc90dd4a3e6d5b1ee28180f2fe', 1, 'dev-owner@lists.example.org', 'dev-owner@lists.example.org', 'held', 'regular', '2026-12-03 10:20:43.585493+00', '2026-12-10 10:20:43.585493+00', NULL, '1');
INSERT INTO public.tokens VALUES (2, '\xfc0a9031eb705e50839004ba1645447eada7c8a6857f1603d6d31b736ce3e0ce', 1, 'dev-owner@lists.example.org', 'dev-owner@lists.example.org', 'held', 'regular', '2026-12-03 10:20:43.588702+00', '2026-12-10 10:20:43.588702+00', NULL, '2');
INSERT INTO public.tokens VALUES (3, '\xc04229054270e8e40e3c5332373f5ab9bd24427af842c856d1fcfdd7e3b1d606', 1, 'henry@example.org', 'henry@example.org', 'subscribe', 'regular', '2026-12-03 10:20:43.594991+00', '2026-12-06 10:20:43.594991+00', NULL, '');


--
-- Name: bans_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.bans_id_seq', 2, true);


--
-- Name: bounce_events_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.bounce_events_id_seq', 1, true);


--
-- Name: deliveries_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.deliveries_id_seq', 44, true);


--
-- Name: dkim_keys_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.dkim_keys_id_seq', 1, true);


--
-- Name: domains_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.domains_id_seq', 3, true);


--
-- Name: goose_db_version_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.goose_db_version_id_seq', 19, true);


--
-- Name: inbound_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.inbound_id_seq', 3, true);


--
-- Name: lists_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.lists_id_seq', 3, true);


--
-- Name: members_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.members_id_seq', 13, true);


--
-- Name: messages_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.messages_id_seq', 8, true);


--
-- Name: moderation_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.moderation_id_seq', 2, true);


--
-- Name: outbound_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.outbound_id_seq', 12, true);


--
-- Name: tokens_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.tokens_id_seq', 3, true);


--
-- Name: bans bans_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bans
    ADD CONSTRAINT bans_pkey PRIMARY KEY (id);


--
-- Name: bounce_events bounce_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bounce_events
    ADD CONSTRAINT bounce_events_pkey PRIMARY KEY (id);


--
-- Name: deliveries deliveries_job_rcpt_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_job_rcpt_key UNIQUE (job, rcpt);


--
-- Name: deliveries deliveries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id);


--
-- Name: dkim_keys dkim_keys_domain_selector_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dkim_keys
    ADD CONSTRAINT dkim_keys_domain_selector_key UNIQUE (domain, selector);


--
-- Name: dkim_keys dkim_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dkim_keys
    ADD CONSTRAINT dkim_keys_pkey PRIMARY KEY (id);


--
-- Name: domains domains_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.domains
    ADD CONSTRAINT domains_name_key UNIQUE (name);


--
-- Name: domains domains_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.domains
    ADD CONSTRAINT domains_pkey PRIMARY KEY (id);


--
-- Name: ghosts ghosts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ghosts
    ADD CONSTRAINT ghosts_pkey PRIMARY KEY (list_id, message_id);


--
-- Name: goose_db_version goose_db_version_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.goose_db_version
    ADD CONSTRAINT goose_db_version_pkey PRIMARY KEY (id);


--
-- Name: inbound inbound_list_id_kind_rcpt_content_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inbound
    ADD CONSTRAINT inbound_list_id_kind_rcpt_content_key_key UNIQUE (list_id, kind, rcpt, content_key);


--
-- Name: inbound inbound_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inbound
    ADD CONSTRAINT inbound_pkey PRIMARY KEY (id);


--
-- Name: list_templates list_templates_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.list_templates
    ADD CONSTRAINT list_templates_pkey PRIMARY KEY (list_id, name);


--
-- Name: lists lists_address_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lists
    ADD CONSTRAINT lists_address_key UNIQUE (address);


--
-- Name: lists lists_domain_id_local_part_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lists
    ADD CONSTRAINT lists_domain_id_local_part_key UNIQUE (domain_id, local_part);


--
-- Name: lists lists_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lists
    ADD CONSTRAINT lists_pkey PRIMARY KEY (id);


--
-- Name: members members_list_id_address_norm_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.members
    ADD CONSTRAINT members_list_id_address_norm_key UNIQUE (list_id, address_norm);


--
-- Name: members members_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.members
    ADD CONSTRAINT members_pkey PRIMARY KEY (id);


--
-- Name: messages messages_list_id_article_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_list_id_article_key UNIQUE (list_id, article);


--
-- Name: messages messages_list_id_message_id_content_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_list_id_message_id_content_key_key UNIQUE (list_id, message_id, content_key);


--
-- Name: messages messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_pkey PRIMARY KEY (id);


--
-- Name: moderation moderation_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.moderation
    ADD CONSTRAINT moderation_pkey PRIMARY KEY (id);


--
-- Name: outbound outbound_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbound
    ADD CONSTRAINT outbound_pkey PRIMARY KEY (id);


--
-- Name: reply_counts reply_counts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reply_counts
    ADD CONSTRAINT reply_counts_pkey PRIMARY KEY (address_norm, day);


--
-- Name: secrets secrets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secrets
    ADD CONSTRAINT secrets_pkey PRIMARY KEY (name);


--
-- Name: tokens tokens_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tokens
    ADD CONSTRAINT tokens_hash_key UNIQUE (hash);


--
-- Name: tokens tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tokens
    ADD CONSTRAINT tokens_pkey PRIMARY KEY (id);


--
-- Name: bans_once; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX bans_once ON public.bans USING btree (COALESCE(list_id, (0)::bigint), pattern);


--
-- Name: bounce_events_member; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX bounce_events_member ON public.bounce_events USING btree (list_id, address_norm, at);


--
-- Name: deliveries_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX deliveries_due ON public.deliveries USING btree (next_attempt_at) WHERE (state = 'pending'::text);


--
-- Name: deliveries_leased; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX deliveries_leased ON public.deliveries USING btree (lease_until) WHERE (state = 'sending'::text);


--
-- Name: ghosts_by_thread; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ghosts_by_thread ON public.ghosts USING btree (list_id, thread_id);


--
-- Name: inbound_new; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX inbound_new ON public.inbound USING btree (id) WHERE (state = 'new'::text);


--
-- Name: members_by_address; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX members_by_address ON public.members USING btree (address_norm);


--
-- Name: members_fanout; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX members_fanout ON public.members USING btree (list_id) WHERE ((status = 'active'::text) AND (delivery <> 'nomail'::text));


--
-- Name: messages_by_date; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_by_date ON public.messages USING btree (list_id, received_at);


--
-- Name: messages_by_msgid; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_by_msgid ON public.messages USING btree (list_id, message_id);


--
-- Name: messages_by_subject; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_by_subject ON public.messages USING btree (list_id, subject_key, article);


--
-- Name: messages_by_thread; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_by_thread ON public.messages USING btree (list_id, thread_id, article);


--
-- Name: messages_from_trgm; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_from_trgm ON public.messages USING gin (((((from_name || ' <'::text) || from_addr) || '>'::text)) public.gin_trgm_ops);


--
-- Name: messages_subject_trgm; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_subject_trgm ON public.messages USING gin (subject public.gin_trgm_ops);


--
-- Name: messages_text_trgm; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX messages_text_trgm ON public.messages USING gin (public.message_text(raw) public.gin_trgm_ops);


--
-- Name: moderation_held; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX moderation_held ON public.moderation USING btree (list_id, id) WHERE (state = 'held'::text);


--
-- Name: moderation_once; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX moderation_once ON public.moderation USING btree (list_id, message_id, content_key);


--
-- Name: outbound_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX outbound_due ON public.outbound USING btree (next_attempt_at) WHERE (state = 'pending'::text);


--
-- Name: bans bans_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bans
    ADD CONSTRAINT bans_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- Name: bounce_events bounce_events_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bounce_events
    ADD CONSTRAINT bounce_events_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- Name: deliveries deliveries_job_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_job_fkey FOREIGN KEY (job) REFERENCES public.outbound(id) ON DELETE CASCADE;


--
-- Name: deliveries deliveries_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT deliveries_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- Name: ghosts ghosts_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ghosts
    ADD CONSTRAINT ghosts_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- Name: inbound inbound_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inbound
    ADD CONSTRAINT inbound_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- Name: list_templates list_templates_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.list_templates
    ADD CONSTRAINT list_templates_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- Name: lists lists_domain_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lists
    ADD CONSTRAINT lists_domain_id_fkey FOREIGN KEY (domain_id) REFERENCES public.domains(id);


--
-- Name: members members_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.members
    ADD CONSTRAINT members_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- Name: messages messages_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- Name: moderation moderation_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.moderation
    ADD CONSTRAINT moderation_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- Name: outbound outbound_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbound
    ADD CONSTRAINT outbound_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- Name: outbound outbound_message_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbound
    ADD CONSTRAINT outbound_message_fkey FOREIGN KEY (message) REFERENCES public.messages(id) ON DELETE CASCADE;


--
-- Name: tokens tokens_list_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tokens
    ADD CONSTRAINT tokens_list_id_fkey FOREIGN KEY (list_id) REFERENCES public.lists(id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--


