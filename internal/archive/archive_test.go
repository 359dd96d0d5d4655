package archive_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { pgtest.Main(m) }

// threadCases is the repository's own thread corpus: one directory of
// messages per case, each case's expected trees described in its
// README.md.
const threadCases = "../../testdata/threads"

func newList(t *testing.T) (*sqlx.DB, lists.List) {
	t.Helper()
	d := pgtest.New(t)
	a, _ := mailaddr.ParseList("dev@lists.example.org")
	l, err := lists.Create(t.Context(), d, a, lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return d, l
}

// insert archives one message as intake does, in its own transaction.
func insert(t *testing.T, d *sqlx.DB, listID int64, raw []byte) archive.Stored {
	t.Helper()
	raw = mailmsg.Canonicalize(raw)
	s, err := mailmsg.Parse(raw, "h.example", mailmsg.Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tx := d.MustBeginTx(t.Context(), nil)
	defer tx.Rollback()
	st, err := archive.Insert(t.Context(), tx, archive.Post{ListID: listID, Raw: raw, Summary: s, Source: "import", ReceivedAt: time.Unix(0, 0)})
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return st
}

func msg(id, subject string, refs ...string) []byte {
	h := fmt.Sprintf("From: a@example.org\r\nSubject: %s\r\nMessage-ID: <%s>\r\n", subject, id)
	if len(refs) > 0 {
		h += "References: <" + strings.Join(refs, "> <") + ">\r\n"
	}
	return []byte(h + "\r\nbody of " + id + "\r\n")
}

func entries(t *testing.T, d *sqlx.DB, listID int64) []archive.Entry {
	t.Helper()
	es, err := archive.Entries(t.Context(), d, listID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// snapshot is everything derived that Rethread rebuilds.
func snapshot(t *testing.T, d *sqlx.DB, listID int64) string {
	t.Helper()
	var rows []string
	err := d.SelectContext(t.Context(), &rows, `
		SELECT format('%s %s %s %s', article, thread_id, refs, coalesce(parent_msgid, '-')) FROM messages WHERE list_id = $1
		UNION ALL SELECT format('ghost %s %s', message_id, thread_id) FROM ghosts WHERE list_id = $1
		ORDER BY 1`, listID)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(rows, "\n")
}

func TestArticlesAndDuplicates(t *testing.T) {
	t.Parallel()
	d, l := newList(t)
	a := insert(t, d, l.ID, msg("a@x", "first"))
	b := insert(t, d, l.ID, msg("b@x", "second"))
	again := insert(t, d, l.ID, msg("a@x", "first"))
	if a.Article != 1 || b.Article != 2 || !again.Duplicate || again.Article != 1 {
		t.Errorf("articles %d, %d; retry %+v; want 1, 2 and a duplicate of 1", a.Article, b.Article, again)
	}
	// A different message reusing a Message-ID is kept as its own article.
	other := insert(t, d, l.ID, msg("a@x", "an impostor"))
	if other.Duplicate || other.Article != 3 {
		t.Errorf("reused Message-ID with other content: %+v, want article 3", other)
	}
}

// TestOutOfOrder: a reply that arrives before its parent forms a thread
// with a ghost; the parent then joins that thread.
func TestOutOfOrder(t *testing.T) {
	t.Parallel()
	d, l := newList(t)
	reply := insert(t, d, l.ID, msg("reply@x", "Re: q", "q@x"))
	other := insert(t, d, l.ID, msg("other@x", "unrelated"))
	sibling := insert(t, d, l.ID, msg("sib@x", "Re: q", "q@x"))
	parent := insert(t, d, l.ID, msg("q@x", "q"))
	if reply.ThreadID != 1 || sibling.ThreadID != 1 || parent.ThreadID != 1 || other.ThreadID != 2 {
		t.Errorf("threads: reply %d, sibling %d, parent %d, other %d; want 1, 1, 1, 2",
			reply.ThreadID, sibling.ThreadID, parent.ThreadID, other.ThreadID)
	}
	ps := archive.Parents(entries(t, d, l.ID))
	if ps[reply.Article] != parent.Article || ps[sibling.Article] != parent.Article {
		t.Errorf("parents = %v, want both replies under article %d", ps, parent.Article)
	}
}

// TestThreadMerge: a message referencing two threads joins them; the
// older id survives.
func TestThreadMerge(t *testing.T) {
	t.Parallel()
	d, l := newList(t)
	insert(t, d, l.ID, msg("a@x", "a"))
	insert(t, d, l.ID, msg("b@x", "b"))
	insert(t, d, l.ID, msg("c@x", "c", "a@x", "b@x"))
	for _, e := range entries(t, d, l.ID) {
		if e.ThreadID != 1 {
			t.Errorf("article %d in thread %d, want 1", e.Article, e.ThreadID)
		}
	}
}

// TestReferenceLoops: messages referring to each other (and themselves)
// are archived, threaded together, and their parent links form no cycle.
func TestReferenceLoops(t *testing.T) {
	t.Parallel()
	d, l := newList(t)
	insert(t, d, l.ID, msg("p@x", "p", "q@x", "p@x"))
	insert(t, d, l.ID, msg("q@x", "q", "p@x"))
	insert(t, d, l.ID, msg("r@x", "r", "r@x", "r@x"))
	es := entries(t, d, l.ID)
	ps := archive.Parents(es)
	for _, e := range es {
		seen := map[int64]bool{}
		for n, ok := e.Article, true; ok; n, ok = ps[n] {
			if seen[n] {
				t.Fatalf("parent cycle through %d: %v", n, ps)
			}
			seen[n] = true
		}
	}
	if es[0].ThreadID != es[1].ThreadID {
		t.Errorf("p and q in threads %d and %d, want one", es[0].ThreadID, es[1].ThreadID)
	}
}

func TestParentsBreaksCycles(t *testing.T) {
	t.Parallel()
	es := []archive.Entry{
		{Article: 1, MessageID: "a", Refs: []string{"c"}},
		{Article: 2, MessageID: "b", Refs: []string{"a"}},
		{Article: 3, MessageID: "c", Refs: []string{"b"}},
		{Article: 4, MessageID: "d", Refs: []string{"c"}},
	}
	ps := archive.Parents(es)
	if len(ps) != 3 || ps[4] != 3 {
		t.Errorf("Parents() = %v, want one link of the 3-cycle cut and 4 -> 3 kept", ps)
	}
}

// corpusFiles lists a corpus directory's messages (*.eml) in a stable
// order: by name, which is the order they are archived in.
func corpusFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// TestCorpusThreads threads each case of testdata/threads, compares the
// trees with golden files checked by hand against the trees that
// testdata/threads/README.md expects, and checks that Rethread rebuilds
// exactly what incremental placement produced. A missing or empty case
// fails the test: the corpus is part of the repository.
func TestCorpusThreads(t *testing.T) {
	for _, name := range []string{"discussion", "ghosts", "out-of-order", "loops", "duplicates", "broken-refs", "subject"} {
		files := corpusFiles(t, filepath.Join(threadCases, name))
		if len(files) == 0 {
			t.Fatalf("thread case %s: no messages in %s", name, filepath.Join(threadCases, name))
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, l := newList(t)
			for _, f := range files {
				raw, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				insert(t, d, l.ID, raw)
			}
			es := entries(t, d, l.ID)
			var buf bytes.Buffer
			if err := archive.WriteTrees(&buf, es, archive.Parents(es)); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "threads", name+".golden"), buf.Bytes())

			before := snapshot(t, d, l.ID)
			tx := d.MustBeginTx(context.Background(), nil)
			if _, err := archive.Rethread(t.Context(), tx, l.ID, "h.example"); err != nil {
				t.Fatalf("Rethread: %v", err)
			}
			tx.Commit()
			if after := snapshot(t, d, l.ID); after != before {
				t.Errorf("Rethread changed derived data:\nincremental:\n%s\nrethread:\n%s", before, after)
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		os.WriteFile(path+".got", got, 0o644)
		t.Errorf("%s differs; see %s.got (diff them; -update accepts)", path, path)
	}
}

// TestInsertBatch: a batch gives the same articles, threads and
// duplicates as inserting the posts one by one.
func TestInsertBatch(t *testing.T) {
	t.Parallel()
	d, l := newList(t)
	var posts []archive.Post
	for _, raw := range [][]byte{msg("a@x", "a"), msg("b@x", "Re: a", "a@x"), msg("a@x", "a"), msg("c@x", "c")} {
		raw = mailmsg.Canonicalize(raw)
		s, err := mailmsg.Parse(raw, "h.example", mailmsg.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		posts = append(posts, archive.Post{ListID: l.ID, Raw: raw, Summary: s, Source: "smtp", ReceivedAt: time.Unix(0, 0), Queue: true})
	}
	sts, err := archive.InsertBatch(t.Context(), d, posts)
	if err != nil {
		t.Fatalf("InsertBatch() = %v", err)
	}
	got := fmt.Sprint(sts[0].Article, sts[1].Article, sts[1].ThreadID, sts[2].Duplicate, sts[2].Article, sts[3].Article, sts[3].ThreadID)
	if want := "1 2 1 true 1 3 3"; got != want {
		t.Errorf("batch results %s, want %s (%+v)", got, want, sts)
	}
	var jobs int
	d.GetContext(t.Context(), &jobs, `SELECT count(*) FROM outbound WHERE kind = 'post'`)
	if jobs != 3 {
		t.Errorf("%d delivery jobs, want 3", jobs)
	}
}

// TestSubjectThreading: with the list setting on, a "Re:" without
// references joins the latest thread with its base subject; off (the
// default), it starts its own thread. Rethread agrees either way.
func TestSubjectThreading(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		d, l := newList(t)
		if _, err := lists.Update(t.Context(), d, l.Address, lists.Settings{SubjectThread: &on}); err != nil {
			t.Fatal(err)
		}
		put := func(raw []byte) archive.Stored {
			raw = mailmsg.Canonicalize(raw)
			s, _ := mailmsg.Parse(raw, "h.example", mailmsg.Limits{})
			st, err := archive.Insert(t.Context(), d, archive.Post{ListID: l.ID, Raw: raw, Summary: s, Source: "smtp", BySubject: on})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		first := put(msg("q@x", "[dev] build fails"))
		put(msg("other@x", "something else"))
		reply := put(msg("r@x", "Re: [dev] Build  fails"))
		if got := reply.ThreadID == first.ThreadID; got != on {
			t.Errorf("subject threading %v: reply in thread %d, question in %d", on, reply.ThreadID, first.ThreadID)
		}
		before := snapshot(t, d, l.ID)
		tx := d.MustBeginTx(t.Context(), nil)
		if _, err := archive.Rethread(t.Context(), tx, l.ID, "h.example"); err != nil {
			t.Fatal(err)
		}
		tx.Commit()
		if after := snapshot(t, d, l.ID); after != before {
			t.Errorf("subject threading %v: rethread changed\n%s\nto\n%s", on, before, after)
		}
	}
}

// TestFillSearchText: posts archived before search_text existed (NULL)
// get it computed from their bytes, in batches, until none is left.
func TestFillSearchText(t *testing.T) {
	t.Parallel()
	d, l := newList(t)
	for i := range 5 {
		insert(t, d, l.ID, msg(fmt.Sprintf("m%d@x", i), "hello"))
	}
	var want []string
	d.Select(&want, `SELECT search_text FROM messages ORDER BY id`)
	d.MustExec(`UPDATE messages SET search_text = NULL`)
	total := 0
	for {
		n, err := archive.FillSearchText(t.Context(), d, 2)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	var got []string
	d.Select(&got, `SELECT search_text FROM messages ORDER BY id`)
	if total != 5 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("filled %d: %q, want 5: %q", total, got, want)
	}
}

// TestExportSender: an export's From_ line gets the envelope sender a post
// came with, else its From: address, never a placeholder when one is known.
func TestExportSender(t *testing.T) {
	t.Parallel()
	d, l := newList(t)
	for _, p := range []struct{ raw, envelope string }{
		{"Subject: no from\r\nMessage-ID: <a@x>\r\n\r\nx\r\n", "raw@old.example"},
		{"From: ann@example.org\r\nMessage-ID: <b@x>\r\n\r\nx\r\n", ""},
	} {
		raw := mailmsg.Canonicalize([]byte(p.raw))
		s, _ := mailmsg.Parse(raw, "h.example", mailmsg.Limits{})
		if _, err := archive.Insert(t.Context(), d, archive.Post{ListID: l.ID, Raw: raw, Summary: s, Source: "import",
			ReceivedAt: time.Now(), EnvelopeFrom: p.envelope}); err != nil {
			t.Fatal(err)
		}
	}
	var senders []string
	err := archive.EachRaw(t.Context(), d, l.ID, time.Time{}, func(sender string, _ time.Time, _ []byte) error {
		senders = append(senders, sender)
		return nil
	})
	if err != nil || fmt.Sprint(senders) != "[raw@old.example ann@example.org]" {
		t.Errorf("senders %v, %v", senders, err)
	}
}

func TestBodyLines(t *testing.T) {
	tests := []struct {
		body string
		want int
	}{
		{"", 0},
		{"one\r\n", 1},
		{"one\r\ntwo", 2},
		{"\r\n\r\n", 2},
		{"a\nb\nc\n", 3},
	}
	for _, tc := range tests {
		if got := archive.BodyLines([]byte(tc.body)); got != tc.want {
			t.Errorf("BodyLines(%q) = %d, want %d", tc.body, got, tc.want)
		}
	}
}

// TestPlansMadeOnEmptyArchive: PL/pgSQL keeps a plan per statement for the
// session, and one made while the archive was empty could look messages
// up by any index starting with list_id, a scan of the whole list for
// every post once it is large (an import starts on an empty archive). So
// one session archives posts to an empty list, the list grows to 20,000
// posts behind its back with no new statistics, and the session's next
// posts (a subject-threaded reply with references to posts and ghosts,
// a post replies were waiting for, a duplicate) must each read a handful
// of rows, not the list.
func TestPlansMadeOnEmptyArchive(t *testing.T) {
	t.Parallel()
	d, l := newList(t)
	ctx := t.Context()
	d.MustExec(`ALTER TABLE messages SET (autovacuum_enabled = false)`) // no statistics but the empty tables'
	d.MustExec(`ALTER TABLE ghosts SET (autovacuum_enabled = false)`)
	conn, err := d.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	put := func(q db.Querier, raw []byte) {
		t.Helper()
		raw = mailmsg.Canonicalize(raw)
		s, _ := mailmsg.Parse(raw, "h.example", mailmsg.Limits{})
		if _, err := archive.Insert(ctx, q, archive.Post{ListID: l.ID, Raw: raw, Summary: s, Source: "import", BySubject: true}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 8 { // past the five custom plans PostgreSQL makes before it settles on a generic one
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		put(tx, msg(fmt.Sprintf("early%d@x", i), "early", fmt.Sprintf("early%d@x", i-1)))
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	d.MustExec(`INSERT INTO messages (list_id, article, message_id, content_key, raw, size, header_len, received_at, thread_id, subject_key)
		SELECT $1, g, 'bulk' || g || '@x', sha256(g::text::bytea), 'x', 1, 1, now(), g, 'bulk'
		  FROM generate_series(100, 20099) g`, l.ID)
	d.MustExec(`INSERT INTO ghosts (list_id, message_id, thread_id)
		SELECT $1, 'ghost' || g || '@x', g FROM generate_series(100, 20099) g`, l.ID)
	d.MustExec(`UPDATE lists SET next_article = 20100 WHERE id = $1`, l.ID)
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	put(tx, msg("late@x", "Re: bulk", "bulk500@x", "bulk19000@x", "missing@x", "ghost7000@x"))
	put(tx, msg("ghost9000@x", "a post its replies were waiting for"))
	put(tx, msg("early3@x", "early", "early2@x")) // a duplicate
	var read int64
	if err := tx.Get(&read, `SELECT sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))
		FROM pg_stat_xact_user_tables WHERE relname IN ('messages', 'ghosts')`); err != nil {
		t.Fatal(err)
	}
	if read > 200 {
		t.Errorf("archiving three posts read %d rows of messages and ghosts; want a handful (plans that scan the list)", read)
	}
}
