package faults

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// row is one line of the invariant table.
type row struct {
	name       string
	checked    int
	violations int
	examples   []string
}

func (r *row) fail(format string, args ...any) {
	r.violations++
	if len(r.examples) < 5 {
		r.examples = append(r.examples, fmt.Sprintf(format, args...))
	}
}

// final is the state of the database after the drain.
type final struct {
	archived map[string]map[string]int   // list → Message-ID → rows
	articles map[string]map[int64]string // list → article → Message-ID
	held     map[string]int              // Message-ID → held rows
	other    map[string]int              // Message-ID → moderation rows in any other state
	tokens   map[string]int              // address → confirmation tokens (cmd list)
	bounces  map[string]int              // address → bounce events (bounce list)
	members  map[string]map[string]bool  // list → active members who take each post
	digests  []issue                     // the digest list's issues, in order
	failed   int                         // jobs, copies and stored mail given up on
}

func load(t *testing.T, db *sqlx.DB) final {
	t.Helper()
	f := final{archived: map[string]map[string]int{}, articles: map[string]map[int64]string{}, held: map[string]int{},
		other: map[string]int{}, tokens: map[string]int{}, bounces: map[string]int{}, members: map[string]map[string]bool{}}
	var msgs []struct {
		List    string `db:"address"`
		Article int64  `db:"article"`
		ID      string `db:"message_id"`
	}
	must(t, db.Select(&msgs, `SELECT l.address, m.article, m.message_id FROM messages m JOIN lists l ON l.id = m.list_id`))
	for _, m := range msgs {
		if f.archived[m.List] == nil {
			f.archived[m.List], f.articles[m.List] = map[string]int{}, map[int64]string{}
		}
		f.archived[m.List][m.ID]++
		f.articles[m.List][m.Article] = m.ID
	}
	var mods []struct{ State, ID string }
	must(t, db.Select(&mods, `SELECT state, message_id AS id FROM moderation`))
	for _, m := range mods {
		if m.State == "held" {
			f.held[m.ID]++
		} else {
			f.other[m.ID]++
		}
	}
	var pairs []struct{ List, Addr string }
	must(t, db.Select(&pairs, `SELECT l.address AS list, t.address_norm AS addr FROM tokens t JOIN lists l ON l.id = t.list_id`))
	for _, p := range pairs {
		f.tokens[p.Addr]++
	}
	pairs = nil
	must(t, db.Select(&pairs, `SELECT l.address AS list, b.address_norm AS addr FROM bounce_events b JOIN lists l ON l.id = b.list_id`))
	for _, p := range pairs {
		f.bounces[p.Addr]++
	}
	pairs = nil
	must(t, db.Select(&pairs, `SELECT l.address AS list, m.address_norm AS addr FROM members m JOIN lists l ON l.id = m.list_id
		WHERE m.status = 'active' AND m.delivery = 'regular'`))
	for _, p := range pairs {
		if f.members[p.List] == nil {
			f.members[p.List] = map[string]bool{}
		}
		f.members[p.List][p.Addr] = true
	}
	must(t, db.Select(&f.digests, `SELECT i.volume, i.number, i.first_article, i.last_article FROM digest_issues i
		JOIN lists l ON l.id = i.list_id WHERE l.address = $1 ORDER BY i.first_article`, digestList))
	must(t, db.Get(&f.failed, `SELECT (SELECT count(*) FROM outbound WHERE state = 'failed')
		+ (SELECT count(*) FROM deliveries WHERE state = 'failed') + (SELECT count(*) FROM inbound WHERE state = 'failed')`))
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// check computes the invariant table.
func check(t *testing.T, w *workload, db *sqlx.DB, dupBound int) []*row {
	f := load(t, db)
	mails := w.led.all()
	rows := []*row{
		checkAcked(mails, f), checkNoTrace(w, mails, f), checkGapless(f), checkUnchanged(w, f),
		checkFanout(w, f), checkDuplicates(w, dupBound), checkHeld(mails, f), checkJoins(w, mails, f),
		checkBounces(mails, f), {name: "nothing given up on (jobs, copies, stored mail)", checked: 1},
		checkIMAP(t, w, f), checkIssues(f), checkDigestCopies(w, f),
	}
	if f.failed > 0 {
		rows[9].fail("%d rows in state failed", f.failed)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &row{name: "no parley died on its own; no UID changed", checked: len(w.violations) + 1}
	for _, v := range w.violations {
		r.fail("%s", v)
	}
	return append(rows, r)
}

// checkAcked: every post that got 250 is archived exactly once; one whose
// fate is unknown at most once.
func checkAcked(mails []*mail, f final) *row {
	r := &row{name: "post acked 250 → archived exactly once"}
	for _, m := range mails {
		if m.kind != kindPost || (m.outcome != accepted && m.outcome != unknown) {
			continue
		}
		r.checked++
		n := f.archived[m.list][m.messageID]
		if (m.outcome == accepted && n != 1) || n > 1 {
			r.fail("<%s> (%s) archived %d times", m.messageID, m.outcome, n)
		}
	}
	return r
}

// checkNoTrace: mail refused, abandoned or never sent is nowhere: not in
// the archive, not held, not at the sink, no token, no bounce.
func checkNoTrace(w *workload, mails []*mail, f final) *row {
	r := &row{name: "refused/aborted mail → no trace anywhere"}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range mails {
		if m.outcome == accepted || m.outcome == unknown {
			continue
		}
		r.checked++
		traces := f.archived[m.list][m.messageID] + f.held[m.messageID] + f.other[m.messageID] + len(w.copies[m.messageID])
		switch m.kind {
		case kindJoin:
			traces += f.tokens[m.from]
		case kindBounce:
			traces += f.bounces[m.from]
		}
		if traces > 0 {
			r.fail("%s <%s> (%s) left %d traces", m.kind, m.messageID, m.outcome, traces)
		}
	}
	return r
}

// checkGapless: each list's articles are exactly 1..N.
func checkGapless(f final) *row {
	r := &row{name: "article numbers gapless (1..N per list)"}
	for list, arts := range f.articles {
		r.checked++
		for a := int64(1); a <= int64(len(arts)); a++ {
			if _, ok := arts[a]; !ok {
				r.fail("%s: article %d missing of %d", list, a, len(arts))
				break
			}
		}
	}
	return r
}

// checkUnchanged: every article seen in a snapshot during the run still
// holds the same message.
func checkUnchanged(w *workload, f final) *row {
	r := &row{name: "article numbers unchanged (snapshots)"}
	w.mu.Lock()
	defer w.mu.Unlock()
	for list, arts := range w.articles {
		for a, id := range arts {
			r.checked++
			if f.articles[list][a] != id {
				r.fail("%s article %d was <%s>, now <%s>", list, a, id, f.articles[list][a])
			}
		}
	}
	return r
}

// checkFanout: every active member of an open list got every archived
// post of the workload at least once.
func checkFanout(w *workload, f final) *row {
	r := &row{name: "every member got every archived post"}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, list := range []string{bigList, smallList} {
		for id := range f.archived[list] {
			for m := range f.members[list] {
				r.checked++
				if w.copies[id][m] == 0 {
					r.fail("%s never got <%s>", m, id)
				}
			}
		}
	}
	return r
}

// checkDuplicates: copies sent more than once, against the bound of what
// can be in flight when a process dies or loses its database: the
// workers' sends plus the results not yet recorded.
func checkDuplicates(w *workload, bound int) *row {
	r := &row{name: "duplicate copies within bound"}
	w.mu.Lock()
	defer w.mu.Unlock()
	dups := 0
	for _, copies := range []map[string]map[string]int{w.copies, w.digests} {
		for _, rcpts := range copies {
			for _, n := range rcpts {
				r.checked += n
				dups += n - 1
			}
		}
	}
	if dups > bound {
		r.fail("%d duplicates, bound %d", dups, bound)
	}
	return r
}

// checkHeld: a held post that got 250 is held exactly once, never archived.
func checkHeld(mails []*mail, f final) *row {
	r := &row{name: "held post acked → held exactly once"}
	for _, m := range mails {
		if m.kind != kindHeld || (m.outcome != accepted && m.outcome != unknown) {
			continue
		}
		r.checked++
		n := f.held[m.messageID]
		if (m.outcome == accepted && n != 1) || n > 1 || f.archived[m.list][m.messageID] > 0 {
			r.fail("<%s> (%s) held %d times, archived %d", m.messageID, m.outcome, n, f.archived[m.list][m.messageID])
		}
	}
	return r
}

// checkJoins: every join that got 250 brought a confirmation, and the
// reply to it made the joiner a member.
func checkJoins(w *workload, mails []*mail, f final) *row {
	r := &row{name: "join acked → token mailed, confirmed"}
	for _, m := range mails {
		if m.kind != kindJoin || m.outcome != accepted {
			continue
		}
		r.checked++
		switch {
		case confirmAddress(w.sink, m.from) == "":
			r.fail("%s: no confirmation mail (%d tokens)", m.from, f.tokens[m.from])
		case !f.members[cmdList][m.from]:
			r.fail("%s: confirmed but not a member", m.from)
		}
	}
	return r
}

// checkBounces: a bounce that got 250 is one bounce event.
func checkBounces(mails []*mail, f final) *row {
	r := &row{name: "bounce acked → recorded exactly once"}
	for _, m := range mails {
		if m.kind != kindBounce || (m.outcome != accepted && m.outcome != unknown) {
			continue
		}
		r.checked++
		if n := f.bounces[m.from]; (m.outcome == accepted && n != 1) || n > 1 {
			r.fail("%s (%s): %d bounce events", m.from, m.outcome, n)
		}
	}
	return r
}

// checkIMAP: each parley serves each list's archive over IMAP with UIDs
// equal to article numbers, and every UID a reader saw during the run is
// still that message.
func checkIMAP(t *testing.T, w *workload, f final) *row {
	r := &row{name: "IMAP UIDs = articles, as readers saw them"}
	for _, p := range w.procs {
		for _, list := range []string{bigList, smallList} {
			got, err := fetchAll(p.imap, list)
			if err != nil {
				r.fail("%s %s: %v", p.name, list, err)
				continue
			}
			for a, id := range f.articles[list] {
				r.checked++
				if got[uint32(a)] != id {
					r.fail("%s %s UID %d: <%s>, article is <%s>", p.name, list, a, got[uint32(a)], id)
				}
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for list, uids := range w.seen {
		for uid, id := range uids {
			r.checked++
			if f.articles[list][int64(uid)] != id {
				r.fail("%s UID %d seen as <%s>, article is <%s>", list, uid, id, f.articles[list][int64(uid)])
			}
		}
	}
	return r
}

func fetchAll(addr, list string) (map[uint32]string, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login("anonymous", "faults").Wait(); err != nil {
		return nil, err
	}
	if _, err := c.Select(list, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return nil, err
	}
	msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil {
		return nil, err
	}
	got := map[uint32]string{}
	for _, m := range msgs {
		if m.Envelope != nil {
			got[uint32(m.UID)] = m.Envelope.MessageID
		}
	}
	return got, nil
}

var confirmRe = regexp.MustCompile(`(?m)^Reply-To: (cmd-confirm\+[a-z2-7]+@lists\.example\.org)`)

// confirmAddress returns the reply address of the confirmation sent to
// addr, or "" when none arrived.
func confirmAddress(sink *smtpsink.Sink, addr string) string {
	for _, m := range sink.Messages() {
		if len(m.To) == 1 && m.To[0] == addr {
			if sub := confirmRe.FindSubmatch(m.Data); sub != nil {
				return string(sub[1])
			}
		}
	}
	return ""
}

// snapshots records every list's article → Message-ID every 2 s; an
// article that changes its message is a violation.
func (w *workload) snapshots(ctx context.Context, db *sqlx.DB) {
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var rows []struct {
			List    string `db:"address"`
			Article int64  `db:"article"`
			ID      string `db:"message_id"`
		}
		err := db.SelectContext(qctx, &rows, `SELECT l.address, m.article, m.message_id FROM messages m JOIN lists l ON l.id = m.list_id`)
		cancel()
		if err != nil {
			continue // the database is down: that is one of the faults
		}
		w.mu.Lock()
		for _, r := range rows {
			if w.articles[r.List] == nil {
				w.articles[r.List] = map[int64]string{}
			}
			if old, ok := w.articles[r.List][r.Article]; ok && old != r.ID {
				w.violations = append(w.violations, fmt.Sprintf("%s article %d was <%s>, then <%s>", r.List, r.Article, old, r.ID))
			}
			w.articles[r.List][r.Article] = r.ID
		}
		w.mu.Unlock()
	}
}

// mustRun runs the parley CLI and requires success.
func mustRun(t *testing.T, env []string, stdin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("parley %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// runOut runs the parley CLI, requires success and returns its output.
func runOut(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("parley %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// issue is one digest issue's range.
type issue struct {
	Volume int   `db:"volume"`
	Number int   `db:"number"`
	First  int64 `db:"first_article"`
	Last   int64 `db:"last_article"`
}

// checkIssues: the digest list's issues cover its articles from the
// first on, each in exactly one issue: no gap, no overlap, numbered in
// order.
func checkIssues(f final) *row {
	r := &row{name: "every post in exactly one digest issue"}
	next := int64(1)
	for i, is := range f.digests {
		if is.First != next || is.Volume != 1 || is.Number != i+1 {
			r.fail("issue %d.%d covers %d-%d, want it to start at %d as 1.%d", is.Volume, is.Number, is.First, is.Last, next, i+1)
		}
		next = is.Last + 1
	}
	for a := range f.articles[digestList] {
		r.checked++
		if a >= next {
			r.fail("article %d is in no issue (issues end at %d)", a, next-1)
		}
	}
	return r
}

// checkDigestCopies: each digest member got every issue, and no post of
// the list as a copy of its own.
func checkDigestCopies(w *workload, f final) *row {
	r := &row{name: "digest members got every issue, no post copy"}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range digestModes {
		m := digestMember(i)
		for _, is := range f.digests {
			r.checked++
			if w.digests[fmt.Sprintf("%d.%d", is.Volume, is.Number)][m] == 0 {
				r.fail("%s never got issue %d.%d", m, is.Volume, is.Number)
			}
		}
		for id := range f.archived[digestList] {
			r.checked++
			if w.copies[id][m] > 0 {
				r.fail("%s, a digest member, got <%s> as a copy", m, id)
			}
		}
	}
	return r
}
