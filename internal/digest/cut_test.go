package digest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/parley-list/parley/internal/archive"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/members"
	"github.com/parley-list/parley/internal/outqueue"
	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newList(t *testing.T, d *sqlx.DB, s lists.Settings) lists.List {
	t.Helper()
	a, _ := mailaddr.ParseList("dev@lists.example.org")
	l, err := lists.Create(t.Context(), d, a, s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func join(t *testing.T, d *sqlx.DB, l lists.List, addr string, mode members.Delivery) {
	t.Helper()
	m, _ := members.ParseNew(addr, "", mode)
	if _, err := members.Add(t.Context(), d, l.ID, []members.New{m}); err != nil {
		t.Fatal(err)
	}
}

func setMode(t *testing.T, d *sqlx.DB, l lists.List, addr string, mode members.Delivery) {
	t.Helper()
	if _, err := members.Update(t.Context(), d, l.ID, addr, members.Settings{Delivery: &mode}); err != nil {
		t.Fatal(err)
	}
}

// archivePost archives a post as intake does (queued for the members),
// or as an import (not), and returns its article.
func archivePost(t *testing.T, d *sqlx.DB, l lists.List, size int, source string) int64 {
	t.Helper()
	var n int64
	d.GetContext(t.Context(), &n, `SELECT count(*) FROM messages`)
	raw := mailmsg.Canonicalize(fmt.Appendf(nil, "From: a@example.org\nSubject: post %d\nMessage-ID: <%d.%d@example.org>\n\n%s\n",
		n, n, time.Now().UnixNano(), strings.Repeat("x", size)))
	s, err := mailmsg.Parse(raw, "h", mailmsg.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := archive.Insert(t.Context(), d, archive.Post{ListID: l.ID, Raw: raw, Summary: s, Source: source, Queue: source != "import"})
	if err != nil {
		t.Fatal(err)
	}
	return st.Article
}

func expand(t *testing.T, d *sqlx.DB) {
	t.Helper()
	if _, err := outqueue.Expand(t.Context(), d, 1000); err != nil {
		t.Fatal(err)
	}
}

// received returns what each recipient was queued: "post N" for a copy
// of article N, "V.I FORMAT {[from,until)}" for a digest.
func received(t *testing.T, d *sqlx.DB) map[string][]string {
	t.Helper()
	var rows []struct {
		Rcpt    string `db:"rcpt"`
		Article *int64 `db:"article"`
		Volume  *int   `db:"volume"`
		Number  *int   `db:"number"`
		Variant string `db:"variant"`
	}
	err := d.SelectContext(t.Context(), &rows, `
		SELECT dl.rcpt, m.article, i.volume, i.number, dl.variant
		  FROM deliveries dl JOIN outbound o ON o.id = dl.job
		  LEFT JOIN messages m ON m.id = o.message LEFT JOIN digest_issues i ON i.id = o.digest
		 ORDER BY dl.rcpt, o.id`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		if r.Article != nil {
			out[r.Rcpt] = append(out[r.Rcpt], fmt.Sprintf("post %d", *r.Article))
		} else {
			out[r.Rcpt] = append(out[r.Rcpt], fmt.Sprintf("%d.%d %s", *r.Volume, *r.Number, r.Variant))
		}
	}
	return out
}

func cut(t *testing.T, d *sqlx.DB, l lists.List, now time.Time) Cutting {
	t.Helper()
	c, err := Cut(t.Context(), d, l.ID, CutOptions{Cause: CauseManual, Now: now, MaxMessage: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSwitchingLosesNothing moves members between regular delivery and
// digests while an issue fills, and checks that every post reaches every
// member exactly once: as a copy or in a digest, never both, never
// neither. A post archived before a switch but expanded after it still
// goes by when it was numbered.
func TestSwitchingLosesNothing(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	l := newList(t, d, lists.Settings{})
	join(t, d, l, "reg@example.org", members.DeliveryRegular)
	join(t, d, l, "dig@example.org", members.DeliveryDigest)
	join(t, d, l, "late@example.org", members.DeliveryRegular)     // to digest after post 2
	join(t, d, l, "back@example.org", members.DeliveryDigestPlain) // to regular after post 3
	join(t, d, l, "none@example.org", members.DeliverySummary)     // to nomail after post 1

	archivePost(t, d, l, 10, "smtp")
	setMode(t, d, l, "none@example.org", members.DeliveryNoMail)
	archivePost(t, d, l, 10, "smtp")
	expand(t, d)
	setMode(t, d, l, "late@example.org", members.DeliverySummary)
	archivePost(t, d, l, 10, "smtp")
	setMode(t, d, l, "back@example.org", members.DeliveryRegular)
	archivePost(t, d, l, 10, "smtp")
	// Post 5 is numbered before reg switches, expanded after.
	archivePost(t, d, l, 10, "smtp")
	setMode(t, d, l, "reg@example.org", members.DeliveryDigest)
	expand(t, d)
	if c := cut(t, d, l, time.Now()); !c.Cut || c.Issue.First != 1 || c.Issue.Last != 5 {
		t.Fatalf("cut %+v, want articles 1-5", c)
	}
	expand(t, d)

	got := received(t, d)
	want := map[string][]string{
		"reg@example.org":  {"post 1", "post 2", "post 3", "post 4", "post 5"},
		"dig@example.org":  {"1.1 mime {[1,6)}"},
		"late@example.org": {"post 1", "post 2", "1.1 summary {[3,6)}"},
		"back@example.org": {"post 4", "post 5", "1.1 plain {[1,4)}"},
	}
	for rcpt, w := range want {
		if g := got[rcpt]; !slices.Equal(g, w) {
			t.Errorf("%s got %q, want %q", rcpt, g, w)
		}
	}
	if g := got["none@example.org"]; len(g) > 0 {
		t.Errorf("a member on nomail got %q", g)
	}
	// reg now takes digests from article 6 on.
	archivePost(t, d, l, 10, "smtp")
	expand(t, d)
	cut(t, d, l, time.Now())
	expand(t, d)
	if g := received(t, d)["reg@example.org"]; !slices.Equal(g[5:], []string{"1.2 mime {[6,7)}"}) {
		t.Errorf("reg after switching got %q", g)
	}
}

// TestCutNumbering: issues follow each other without gap or overlap,
// never empty, numbered within a volume that turns with the year.
func TestCutNumbering(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	l := newList(t, d, lists.Settings{})
	if c := cut(t, d, l, time.Now()); c.Cut {
		t.Fatalf("cut with no digest member: %+v", c.Issue)
	}
	join(t, d, l, "dig@example.org", members.DeliveryDigest)
	if c := cut(t, d, l, time.Now()); c.Cut {
		t.Fatalf("cut with no post: %+v", c.Issue)
	}
	day := time.Date(2026, 12, 30, 12, 0, 0, 0, time.UTC)
	var got []string
	for i, at := range []time.Time{day, day.Add(24 * time.Hour), day.Add(48 * time.Hour), day.Add(49 * time.Hour)} {
		for range i + 1 {
			archivePost(t, d, l, 10, "smtp")
		}
		archivePost(t, d, l, 10, "import") // history is never digested
		c := cut(t, d, l, at)
		got = append(got, fmt.Sprintf("v%d i%d %d-%d %d", c.Issue.Volume, c.Issue.Number, c.Issue.First, c.Issue.Last, c.Issue.Posts))
	}
	want := []string{"v1 i1 1-1 1", "v1 i2 2-4 2", "v2 i1 5-8 3", "v2 i2 9-13 4"} // imports inside, left out
	if !slices.Equal(got, want) {
		t.Errorf("issues %q, want %q", got, want)
	}
}

// TestBudget: an issue stops before the posts it holds pass its budget,
// the rest wait for the next; a post larger than any issue is listed with
// its link, not inlined.
func TestBudget(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	l := newList(t, d, lists.Settings{})
	join(t, d, l, "dig@example.org", members.DeliveryDigest)
	max := int64(2 * (overhead + 60<<10)) // a budget of 60 KB
	for _, size := range []int{20 << 10, 20 << 10, 100 << 10, 20 << 10, 20 << 10} {
		archivePost(t, d, l, size, "smtp")
	}
	c, err := Cut(t.Context(), d, l.ID, CutOptions{Cause: CauseSize, Now: time.Now(), MaxMessage: max})
	if err != nil {
		t.Fatal(err)
	}
	if is := c.Issue; is.First != 1 || is.Last != 3 || !slices.Equal(is.Listed, []int64{3}) || !c.More {
		t.Errorf("first issue %d-%d listed %v more %v; want 1-3, 3 listed, more", is.First, is.Last, is.Listed, c.More)
	}
	c, _ = Cut(t.Context(), d, l.ID, CutOptions{Cause: CauseSize, Now: time.Now(), MaxMessage: max})
	if is := c.Issue; is.First != 4 || is.Last != 5 || len(is.Listed) != 0 || c.More {
		t.Errorf("second issue %d-%d listed %v more %v; want 4-5", is.First, is.Last, is.Listed, c.More)
	}
}

// TestConcurrentCuts: cutters racing (as several parley processes do)
// while posts arrive never cut one article into two issues nor skip one.
func TestConcurrentCuts(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	l := newList(t, d, lists.Settings{})
	join(t, d, l, "dig@example.org", members.DeliveryDigest)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := Cut(t.Context(), d, l.ID, CutOptions{Cause: CauseSize, Now: time.Now(), MaxMessage: 32 << 20}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 60 {
		archivePost(t, d, l, 10, "smtp")
	}
	close(stop)
	wg.Wait()
	cut(t, d, l, time.Now())
	is, err := Issues(t.Context(), d, l.ID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(is, func(i, j int) bool { return is[i].First < is[j].First })
	next := int64(1)
	for i, x := range is {
		if x.First != next || x.Number != i+1 {
			t.Errorf("issue %d.%d covers %d-%d; want it to start at %d as issue %d", x.Volume, x.Number, x.First, x.Last, next, i+1)
		}
		next = x.Last + 1
	}
	if next != 61 {
		t.Errorf("issues end at %d, want 60", next-1)
	}
	var jobs int
	d.GetContext(t.Context(), &jobs, `SELECT count(*) FROM outbound WHERE kind = 'digest'`)
	if jobs != len(is) {
		t.Errorf("%d digest jobs for %d issues", jobs, len(is))
	}
}

// TestDue: an issue is due when the posts waiting reach the size
// threshold, or when a scheduled time has passed since the last issue;
// never when nothing waits.
func TestDue(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	threshold := int64(1000)
	sched, _ := lists.ParseSchedule("daily 06:00")
	tz := "Europe/Berlin"
	l := newList(t, d, lists.Settings{DigestThreshold: &threshold, DigestSchedule: &sched, DigestTZ: &tz})
	join(t, d, l, "dig@example.org", members.DeliveryDigest)
	var since time.Time
	d.GetContext(t.Context(), &since, `SELECT created_at FROM digest_spans`)
	due := func(at time.Time) string {
		t.Helper()
		c, err := Due(t.Context(), d, l, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	berlin, _ := time.LoadLocation(tz)
	nextSix := time.Date(since.In(berlin).Year(), since.In(berlin).Month(), since.In(berlin).Day()+1, 6, 0, 0, 0, berlin)
	if got := due(nextSix.Add(time.Hour)); got != "" {
		t.Errorf("due %q with nothing waiting", got)
	}
	archivePost(t, d, l, 10, "smtp")
	if got := due(since.Add(time.Second)); got != "" && nextSix.After(since.Add(time.Second)) {
		t.Errorf("due %q right after the first post", got)
	}
	if got := due(nextSix.Add(time.Minute)); got != CauseSchedule {
		t.Errorf("at 06:01 the next day: due %q, want schedule", got)
	}
	archivePost(t, d, l, 2000, "smtp")
	if got := due(since.Add(time.Second)); got != CauseSize {
		t.Errorf("past the threshold: due %q, want size", got)
	}
	if _, err := Cut(t.Context(), d, l.ID, CutOptions{Cause: CauseSize, Now: nextSix.Add(time.Minute), MaxMessage: 32 << 20}); err != nil {
		t.Fatal(err)
	}
	archivePost(t, d, l, 10, "smtp")
	if got := due(nextSix.Add(time.Hour)); got != "" {
		t.Errorf("an hour after an issue: due %q", got)
	}
	if got := due(nextSix.Add(24 * time.Hour)); got != CauseSchedule {
		t.Errorf("a day later: due %q, want schedule", got)
	}
}
