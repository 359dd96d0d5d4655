package db_test

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

// TestUpgradeFromPrerelease restores a frozen pre-release database (the
// squashed chain's last version, with data in every table), migrates it,
// and checks that every row of every table is still there, that the
// schema is exactly the one a new database gets, and that the archive
// goes on where it stopped: the next post gets the next article number,
// joins its thread and queues its delivery.
func TestUpgradeFromPrerelease(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDSN(t)
	d := open(t, dsn)
	ctx := t.Context()
	if _, err := d.ExecContext(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	restore(t, dsn, "testdata/prerelease-18.sql")
	before, cols := contents(t, d, nil)
	if err := db.Migrate(ctx, d.DB, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
	if err := db.Migrate(ctx, d.DB, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("Migrate() again = %v", err)
	}
	after, _ := contents(t, d, cols)
	for table, want := range before {
		if got := after[table]; got != want {
			t.Errorf("table %s changed in the upgrade:\n got %s\nwant %s", table, got, want)
		}
	}
	if got, want := schema(t, d), schema(t, pgtest.New(t)); got != want {
		t.Errorf("upgraded schema differs from a new database's:\n%s", diffLines(got, want))
	}
	cur, latest, err := db.SchemaVersion(ctx, d.DB)
	if err != nil || cur != latest {
		t.Errorf("SchemaVersion() = %d, %d, %v; want current = latest", cur, latest, err)
	}
	var frozen int
	d.GetContext(ctx, &frozen, `SELECT count(*) FROM messages`)
	if n, err := archive.FillSearchText(ctx, d, 1000); err != nil || n != frozen {
		t.Errorf("FillSearchText() = %d, %v; want every one of the %d frozen posts", n, err, frozen)
	}
	goesOn(t, d)
}

// goesOn archives a reply to a frozen thread on the upgraded database.
func goesOn(t *testing.T, d *sqlx.DB) {
	t.Helper()
	ctx := t.Context()
	var list struct {
		ID   int64 `db:"id"`
		Next int64 `db:"next_article"`
	}
	if err := d.GetContext(ctx, &list, `SELECT id, next_article FROM lists WHERE address = 'dev@lists.example.org'`); err != nil {
		t.Fatal(err)
	}
	var thread int64
	if err := d.GetContext(ctx, &thread, `SELECT thread_id FROM messages WHERE message_id = 'r2@example.org'`); err != nil {
		t.Fatal(err)
	}
	raw := mailmsg.Canonicalize([]byte("From: carol@example.net\nSubject: Re: Build fails on arm64\n" +
		"Message-ID: <after-upgrade@example.net>\nIn-Reply-To: <r2@example.org>\nReferences: <q1@example.org> <r1@example.com> <r2@example.org>\n\nTry lld.\n"))
	sum, err := mailmsg.Parse(raw, "parley.test", mailmsg.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := archive.Insert(ctx, d, archive.Post{ListID: list.ID, Raw: raw, Summary: sum, Source: "smtp", ReceivedAt: time.Now(), Queue: true})
	if err != nil {
		t.Fatalf("archiving after the upgrade: %v", err)
	}
	if st.Article != list.Next || st.ThreadID != thread || st.Duplicate {
		t.Errorf("archived as %+v, want article %d in thread %d", st, list.Next, thread)
	}
	var jobs int
	if err := d.GetContext(ctx, &jobs, `SELECT count(*) FROM outbound WHERE message = $1 AND kind = 'post'`, st.ID); err != nil || jobs != 1 {
		t.Errorf("%d delivery jobs for the new post (%v), want 1", jobs, err)
	}
}

func open(t *testing.T, dsn string) *sqlx.DB {
	t.Helper()
	d, err := db.Open(t.Context(), dsn, db.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// restore runs a plain pg_dump file on a connection of its own: a dump
// sets session settings (an empty search_path) that must not leak into
// the pool the test goes on with.
func restore(t *testing.T, dsn, path string) {
	t.Helper()
	dump, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := db.Open(t.Context(), dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.ExecContext(t.Context(), string(dump)); err != nil {
		t.Fatalf("restoring %s: %v", path, err)
	}
}

// contents fingerprints every row of every parley table: a row count and
// the md5 of all rows' text, in a stable order. Columns the upgrade drops
// on purpose are left out, and so are columns later migrations add (cols,
// when given, names the columns to read: the ones the table had before);
// goose's own table changes by design.
func contents(t *testing.T, d *sqlx.DB, cols map[string][]string) (map[string]string, map[string][]string) {
	t.Helper()
	dropped := map[string]string{"messages": "mime"}
	var tables []string
	if err := d.SelectContext(t.Context(), &tables, `SELECT tablename FROM pg_tables
		WHERE schemaname = 'public' AND tablename NOT IN ('goose_db_version', 'schema_functions') ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if len(tables) < 15 {
		t.Fatalf("only %d tables: %v", len(tables), tables)
	}
	if cols != nil { // the tables of before; later ones are new
		tables = tables[:0]
		for table := range cols {
			tables = append(tables, table)
		}
	}
	out, used := map[string]string{}, map[string][]string{}
	for _, table := range tables {
		cs := cols[table]
		if cs == nil {
			if err := d.SelectContext(t.Context(), &cs, `SELECT column_name FROM information_schema.columns
				WHERE table_schema = 'public' AND table_name = $1 AND column_name <> $2 ORDER BY column_name`,
				table, dropped[table]); err != nil {
				t.Fatal(err)
			}
		}
		used[table] = cs
		exprs := make([]string, len(cs))
		for i, c := range cs {
			exprs[i] = c
			if c == "address_norm" { // keys became lower case (00003_address_case.sql)
				exprs[i] = "lower(address_norm) AS address_norm"
			}
		}
		var fp string
		q := `SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(r::text, E'\n' ORDER BY r::text)), '-')
			FROM (SELECT ` + strings.Join(exprs, ", ") + ` FROM ` + table + `) r`
		if err := d.GetContext(t.Context(), &fp, q); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(fp, "0 rows") {
			t.Errorf("table %s is empty in the frozen database: it tests nothing", table)
		}
		out[table] = fp
	}
	return out, used
}

// schema describes the public schema in a stable, comparable form:
// columns (by name, not position: the pre-release chain added columns at
// the end), constraints, indexes and functions.
func schema(t *testing.T, d *sqlx.DB) string {
	t.Helper()
	var lines []string
	err := d.SelectContext(t.Context(), &lines, `
		SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		       || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
		  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
		 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
		UNION ALL
		SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
		  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
		UNION ALL
		SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
		UNION ALL
		SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid))
		  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// diffLines lists the lines only one side has.
func diffLines(got, want string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var b strings.Builder
	for l := range g {
		if !w[l] {
			b.WriteString("+ upgraded only: " + l + "\n")
		}
	}
	for l := range w {
		if !g[l] {
			b.WriteString("- new only:      " + l + "\n")
		}
	}
	return b.String()
}

// TestApplyFunctions: a function is created from its file, replaced when
// the file changes (even its result type, which CREATE OR REPLACE cannot
// change), left alone when it does not, and dropped when its file goes.
func TestApplyFunctions(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	ctx := t.Context()
	apply := func(files fstest.MapFS) {
		t.Helper()
		if err := db.ApplyFunctions(ctx, d.DB, files, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("applyFunctions: %v", err)
		}
	}
	answer := func() string {
		t.Helper()
		var s string
		if err := d.GetContext(ctx, &s, `SELECT parley_answer()::text`); err != nil {
			return "error: " + err.Error()
		}
		return s
	}
	oid := func() int64 {
		var o int64
		d.GetContext(ctx, &o, `SELECT coalesce(max(oid::bigint), 0) FROM pg_proc WHERE proname = 'parley_answer'`)
		return o
	}
	fn := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	apply(fstest.MapFS{"functions/parley_answer.sql": fn(`CREATE FUNCTION parley_answer() RETURNS int LANGUAGE sql AS 'SELECT 41'`)})
	if got := answer(); got != "41" {
		t.Errorf("created: parley_answer() = %s, want 41", got)
	}
	first := oid()
	apply(fstest.MapFS{"functions/parley_answer.sql": fn(`CREATE FUNCTION parley_answer() RETURNS int LANGUAGE sql AS 'SELECT 41'`)})
	if oid() != first {
		t.Error("an unchanged file replaced its function")
	}
	apply(fstest.MapFS{"functions/parley_answer.sql": fn(`CREATE FUNCTION parley_answer() RETURNS text LANGUAGE sql AS 'SELECT ''42'''`)})
	if got := answer(); got != "42" {
		t.Errorf("changed: parley_answer() = %s, want 42", got)
	}
	apply(fstest.MapFS{})
	if got := answer(); !strings.HasPrefix(got, "error") {
		t.Errorf("file removed: parley_answer() = %s, want no such function", got)
	}
	err := db.ApplyFunctions(ctx, d.DB, fstest.MapFS{"functions/misnamed.sql": fn(`CREATE FUNCTION other() RETURNS int LANGUAGE sql AS 'SELECT 1'`)},
		slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "does not create a function named misnamed") {
		t.Errorf("a file creating another name: %v, want refused", err)
	}
}

// TestCaseMerge: members of one list whose addresses differ only in case
// (two subscriptions before addresses compared case-insensitively) are
// merged by 00003_address_case.sql: the older stays, with the higher role,
// the merge is recorded and logged, and the other address keys are lower
// case after it.
const caseMergeVersion = 3 // 00003_address_case.sql

func TestCaseMerge(t *testing.T) {
	t.Parallel()
	d := open(t, pgtest.NewDSN(t))
	ctx := t.Context()
	// A database made before the merge: migrations up to 2 only.
	d.MustExecContext(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`)
	if err := db.MigrateTo(ctx, d.DB, caseMergeVersion-1); err != nil {
		t.Fatal(err)
	}
	d.MustExecContext(ctx, `INSERT INTO domains (name) VALUES ('lists.example.org')`)
	d.MustExecContext(ctx, `INSERT INTO lists (domain_id, local_part, address, uidvalidity) SELECT id, 'dev', 'dev@lists.example.org', 1 FROM domains`)
	d.MustExecContext(ctx, `INSERT INTO members (list_id, address, address_norm, role, joined_at)
		SELECT id, a, n, r, t::timestamptz FROM lists, (VALUES
			('grace@school8.example', 'grace@school8.example', 'member', '2026-01-01'),
			('GRACE@School8.Example', 'GRACE@school8.example', 'owner', '2026-02-01'),
			('Judy@example.org', 'Judy@example.org', 'member', '2026-01-05')) AS v(a, n, r, t)`)
	d.MustExecContext(ctx, `INSERT INTO bounce_events (list_id, address_norm, kind, weight, source) SELECT id, 'GRACE@school8.example', 'hard', 1, 'dsn' FROM lists`)
	var logs strings.Builder
	if err := db.Migrate(ctx, d.DB, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	var got []string
	d.SelectContext(ctx, &got, `SELECT address || ' ' || address_norm || ' ' || role FROM members ORDER BY address_norm`)
	want := []string{"grace@school8.example grace@school8.example owner", "Judy@example.org judy@example.org member"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("members after the merge %q, want %q", got, want)
	}
	var merges []string
	d.SelectContext(ctx, &merges, `SELECT kept_address || ' < ' || merged_address FROM member_case_merges`)
	if len(merges) != 1 || merges[0] != "grace@school8.example < GRACE@School8.Example" {
		t.Errorf("recorded merges %q", merges)
	}
	if !strings.Contains(logs.String(), "event=member_merged") || !strings.Contains(logs.String(), "merged=GRACE@School8.Example") {
		t.Errorf("the merge was not logged:\n%s", logs.String())
	}
	var upper int
	d.GetContext(ctx, &upper, `SELECT count(*) FROM bounce_events WHERE address_norm <> lower(address_norm)`)
	if upper != 0 {
		t.Errorf("%d bounce events keep an upper-case key", upper)
	}
}
