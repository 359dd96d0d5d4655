package imapd

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/parley-list/parley/internal/testutil/pgtest"
)

// TestSearchUsesIndexes: the SQL a text search becomes can be answered by
// the trigram indexes (the expressions match the indexed ones), so a
// search never has to read every message of a large list.
func TestSearchUsesIndexes(t *testing.T) {
	d := pgtest.New(t)
	tests := []struct {
		name  string
		crit  imap.SearchCriteria
		index string
	}{
		{"body", imap.SearchCriteria{Body: []string{"zebras"}}, "messages_text_trgm"},
		{"text", imap.SearchCriteria{Text: []string{"zebras"}}, "messages_text_trgm"},
		{"header", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Mailer", Value: "mutt"}}}, "messages_text_trgm"},
		{"from", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "ann@example"}}}, "messages_from_trgm"},
		{"subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "widgets"}}}, "messages_subject_trgm"},
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
			if got := strings.Join(plan, "\n"); !strings.Contains(got, tt.index) {
				t.Errorf("plan does not use %s:\n%s", tt.index, got)
			}
		})
	}
}
