package ingest_test

import (
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-list/parley/internal/ingest"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/testutil/logbuf"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

// TestEveryDecisionLoggedOnce: each message handed to intake gives exactly
// one log line, with the event that says what happened and the list and
// Message-ID it happened to; refusals before any policy included.
func TestEveryDecisionLoggedOnce(t *testing.T) {
	t.Parallel()
	var logs logbuf.Buffer
	d := pgtest.New(t)
	f := &fixture{t: t, db: d, svc: ingest.New(ingest.Options{DB: d, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Hostname: "parley.test", MaxMessageBytes: 4096})}
	f.list("dev@lists.example.org", lists.PostMembers, lists.ActionHold, "owner:owner@example.org", "bob@example.org")
	f.list("closed@lists.example.org", lists.PostMembers, lists.ActionReject)
	tests := []struct {
		name, from, to, msg string
		want                string // the one line's event=… and its keys
	}{
		{"accepted", "bob@example.org", "dev@lists.example.org", post("bob@example.org", "a@x", "hi"),
			`event=accepted list=dev@lists.example.org msg_id=a@x`},
		{"the same again", "bob@example.org", "dev@lists.example.org", post("bob@example.org", "a@x", "hi"),
			`event=duplicate list=dev@lists.example.org msg_id=a@x`},
		{"held", "eve@example.net", "dev@lists.example.org", post("eve@example.net", "h@x", "hi"),
			`event=held list=dev@lists.example.org msg_id=h@x`},
		{"held again", "eve@example.net", "dev@lists.example.org", post("eve@example.net", "h@x", "hi"),
			`event=duplicate list=dev@lists.example.org msg_id=h@x`},
		{"rejected by policy", "eve@example.net", "closed@lists.example.org", post("eve@example.net", "r@x", "hi"),
			`event=rejected list=closed@lists.example.org msg_id=r@x`},
		{"too big for any policy", "bob@example.org", "dev@lists.example.org",
			post("bob@example.org", "big@x", "hi") + strings.Repeat("x", 8192), `event=data_refused`},
	}
	events := regexp.MustCompile(`event=\S+`)
	for _, tt := range tests {
		f.send(tt.from, []string{tt.to}, tt.msg)
		got := logs.Take()
		if n := len(events.FindAllString(got, -1)); n != 1 || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %d lines %q, want one with %q", tt.name, n, got, tt.want)
		}
	}
}
