package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOwnerCLI: the CLI as a list owner meets it: an address book pasted
// into member add, the views of lists, members, held posts, texts and
// figures, settings changed and said so, and the refusals and errors a
// person can act on.
func TestOwnerCLI(t *testing.T) {
	t.Parallel()
	env, s, p := serveForPeople(t)
	const list = "dev@lists.example.org"
	mustRun(t, env, "list", "create", list, "--owner", "ann@example.org", "--max-message-size", "20000")
	mustRun(t, env, "list", "create", "other@lists.example.org", "--post-policy", "moderated", "--owner", "ann@example.org")
	p.settle()

	book := "# exported from the address book\n" +
		"Ivan Petrov <ivan@example.org>, \"Lee, Mary\" <mary@example.org>\n" +
		"carol@example.org\n" +
		"Mary again <MARY@example.org>\n"
	out := mustRunIn(t, env, book, "member", "add", list, "--file", "-")
	if !strings.Contains(out, "dev@lists.example.org: 3 added, 1 skipped (0 already members, 1 repeated)") {
		t.Errorf("member add summary:\n%s", out)
	}
	ls := mustRun(t, env, "member", "ls", list)
	for _, want := range []string{"Ivan Petrov", "Lee, Mary", "BOUNCE SCORE"} {
		if !strings.Contains(ls, want) {
			t.Errorf("member ls lacks %q:\n%s", want, ls)
		}
	}
	welcomes := p.settle()
	if len(welcomes) != 3 {
		for _, m := range welcomes {
			t.Logf("to %v:\n%s", m.To, m.Data)
		}
		t.Errorf("%d welcomes, want 3", len(welcomes))
	}
	if got := header(only(t, sentTo(welcomes, "mary@example.org"), "mary@example.org"), "To"); got != `"Lee, Mary" <mary@example.org>` {
		t.Errorf("the welcome's To: is %q, want the display name with the address", got)
	}

	p.mail("stranger@example.net", "other@lists.example.org", "held one", "hello\n")
	p.settle()
	if held := mustRun(t, env, "held", "ls"); !strings.Contains(held, "other@lists.example.org") || !strings.Contains(held, "held one") {
		t.Errorf("held ls without a list:\n%s", held)
	}

	if r := run(t, env, "a-good-password\n", "list", "set", list, "--moderator-password", "-", "--roster", "members"); r.code != 0 ||
		!strings.Contains(r.stdout, "roster:") || !strings.Contains(r.stdout, "owners") || !strings.Contains(r.stdout, "members") ||
		!strings.Contains(r.stdout, "moderator password: set") || strings.Contains(r.stdout, "post policy") {
		t.Errorf("list set says what changed, and only that:\n%s%s", r.stdout, r.stderr)
	}
	if help := mustRun(t, env, "list", "set", "--help"); strings.Contains(help, "(default") {
		t.Errorf("list set --help shows creation defaults:\n%s", help)
	}
	show := mustRun(t, env, "list", "show", list)
	for _, want := range []string{"owners:", "ann@example.org", "moderators:", "moderator password:", "set (it alone authorises owner commands by mail)", "goodbye:"} {
		if !strings.Contains(show, want) {
			t.Errorf("list show lacks %q:\n%s", want, show)
		}
	}

	if tl := mustRun(t, env, "list", "template", "ls", list); !strings.Contains(tl, "welcome") || !strings.Contains(tl, "built-in") {
		t.Errorf("template ls:\n%s", tl)
	}
	mustRunIn(t, env, "Hello from {{.Address}}!\n", "list", "template", "set", list, "welcome", "-")
	if got := mustRun(t, env, "list", "template", "show", list, "welcome"); got != "Hello from {{.Address}}!\n" {
		t.Errorf("template show after set: %q", got)
	}
	if got := mustRun(t, env, "list", "template", "reset", list, "welcome"); !strings.Contains(got, "built-in text again") {
		t.Errorf("template reset: %q", got)
	}
	if got := mustRun(t, env, "list", "template", "show", list, "welcome"); !strings.Contains(got, "Welcome to {{.Address}}") {
		t.Errorf("template show after reset: %q", got)
	}

	p.mail("ivan@example.org", list, "first post", "hello\n")
	p.settle()
	var st struct {
		Months  []struct{ Posts, Posters, Joined int } `json:"months"`
		Posters int                                    `json:"posters"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, env, "list", "stats", list, "--months", "2", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if n := len(st.Months); n != 2 || st.Months[1].Posts != 1 || st.Months[1].Joined != 4 || st.Posters != 1 {
		t.Errorf("list stats: %+v, want this month: 1 post, 4 joined (the owner and three), 1 poster", st)
	}
	if table := mustRun(t, env, "list", "stats", list); !strings.Contains(table, "MONTH") || !strings.Contains(table, "total") {
		t.Errorf("list stats:\n%s", table)
	}
	if b := mustRun(t, env, "bounces", "ls", list); !strings.Contains(b, "SCORE") {
		t.Errorf("bounces ls:\n%s", b)
	}

	big := "From: ivan@example.org\nSubject: big\n\n" + strings.Repeat("0123456789abcdef0123456789abcdef\n", 1000)
	err := p.trySend("ivan@example.org", list, big)
	if err == nil || !strings.Contains(err.Error(), "552") || !strings.Contains(err.Error(), "message of 34 KB is larger than the limit of 20 KB for dev@lists.example.org") {
		t.Errorf("oversize refusal: %v", err)
	}

	mbox := filepath.Join(t.TempDir(), "old.mbox")
	if err := os.WriteFile(mbox, []byte("From a@b Thu Jan  1 00:00:00 2026\nFrom: a@example.org\nSubject: old\nMessage-ID: <old@example.org>\n\nold\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rejects := filepath.Join(t.TempDir(), "rejects.mbox")
	r := run(t, env, "", "archive", "import", list, mbox, "--rejects", rejects)
	if r.code != 0 || strings.Count(r.stdout+r.stderr, "imported 1") != 1 {
		t.Errorf("archive import prints its summary once:\n%s%s", r.stdout, r.stderr)
	}
	if _, err := os.Stat(rejects); err == nil {
		t.Error("archive import made a rejects file though nothing was rejected")
	}

	if r := run(t, append(env, "PARLEY_SMTP_LISTNE=127.0.0.1:2525"), "", "list", "ls"); r.code == 0 ||
		!strings.Contains(r.stderr, "PARLEY_SMTP_LISTNE: no such setting (did you mean PARLEY_SMTP_LISTEN?)") {
		t.Errorf("an unknown variable: code %d\n%s", r.code, r.stderr)
	}
	s.stop()
}
