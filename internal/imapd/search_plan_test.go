package imapd

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

// TestSearchUsesIndexes: the SQL a text search becomes can be answered by
// the trigram indexes (the expressions match the indexed ones), so a
// search never has to read every message of a large list.
func TestSearchUsesIndexes(t *testing.T) {
	d := pgtest.New(t)
	tests := []struct {
		name    string
		crit    imap.SearchCriteria
		indexes []string
	}{
		{"body", imap.SearchCriteria{Body: []string{"zebras"}}, []string{"messages_search_trgm"}},
		{"body, non-ASCII", imap.SearchCriteria{Body: []string{"Bibliothèque"}}, []string{"messages_search_trgm"}},
		{"text", imap.SearchCriteria{Text: []string{"zebras"}}, []string{"messages_header_trgm", "messages_search_trgm", "messages_search_missing"}},
		{"header", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Mailer", Value: "mutt"}}}, []string{"messages_header_trgm"}},
		{"from", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "ann@example"}}}, []string{"messages_from_trgm"}},
		{"subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "widgets"}}}, []string{"messages_subject_trgm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sqlBuilder{sel: &selected{flags: map[uint32][]imap.Flag{}}}
			where, err := b.criteria(&tt.crit, 0)
			if err != nil {
				t.Fatal(err)
			}
			tx := d.MustBegin()
			defer tx.Rollback()
			// Only the criteria, and no plan but an index's: on an empty
			// table any plan is cheap, the question is whether the
			// expressions match an index at all.
			tx.MustExec(`SET LOCAL enable_seqscan = off`)
			var plan []string
			args := append([]any{int64(1), int64(1000)}, b.args...)
			if err := tx.Select(&plan, `EXPLAIN SELECT article FROM messages WHERE $1::bigint > 0 AND $2::bigint > 0 AND `+where, args...); err != nil {
				t.Fatal(err)
			}
			for _, index := range tt.indexes {
				if got := strings.Join(plan, "\n"); !strings.Contains(got, index) {
					t.Errorf("plan does not use %s:\n%s", index, got)
				}
			}
		})
	}
}

// TestSmallArchiveSearchUsesIndex: on an archive of a few thousand
// messages, with fresh statistics and no hints, PostgreSQL answers a text
// search from the trigram index. (When it costed decoding a message like
// one comparison, it read every message instead: 140 ms for 6,000.)
func TestSmallArchiveSearchUsesIndex(t *testing.T) {
	d := pgtest.New(t)
	l, err := lists.Create(t.Context(), d, mustList(t, "small@lists.example.org"), lists.Settings{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d.MustExec(`INSERT INTO messages (list_id, article, message_id, content_key, raw, size, header_len, received_at, search_text)
		SELECT $1, g, 'm' || g, sha256(g::text::bytea), convert_to('Subject: post ' || g || E'\r\n\r\n' || repeat('a line of an ordinary post ', 100), 'UTF8'),
		       2700, 20, now(), repeat('a line of an ordinary post ', 100)
		  FROM generate_series(1, 3000) g`, l.ID)
	d.MustExec(`ANALYZE messages`)
	for _, c := range []struct {
		crit  imap.SearchCriteria
		index string
	}{
		{imap.SearchCriteria{Text: []string{"quetzalcoatl"}}, "messages_header_trgm"},
		{imap.SearchCriteria{Body: []string{"quetzalcoatl"}}, "messages_search_trgm"},
	} {
		b := &sqlBuilder{sel: &selected{flags: map[uint32][]imap.Flag{}}}
		where, err := b.criteria(&c.crit, 0)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		args := append([]any{l.ID, int64(3000)}, b.args...)
		if err := d.Select(&plan, `EXPLAIN SELECT article FROM messages WHERE list_id = $1 AND article <= $2 AND `+where+` ORDER BY article`, args...); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(plan, "\n"); !strings.Contains(got, c.index) {
			t.Errorf("%+v on 3,000 messages does not use %s:\n%s", c.crit, c.index, got)
		}
	}
}

func mustList(t *testing.T, addr string) mailaddr.Address {
	t.Helper()
	a, err := mailaddr.ParseList(addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
