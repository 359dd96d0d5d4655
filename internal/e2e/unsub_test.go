package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// TestOneClickUnsubscribe: each copy carries its member's signed one-click
// link (and is DKIM-signed with it); GET shows a button and changes
// nothing, POST unsubscribes and the owners hear of it, a forged token is
// refused.
func TestOneClickUnsubscribe(t *testing.T) {
	t.Parallel()
	sink := smtpsink.Start(t)
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t), "PARLEY_RELAY=smtp://"+sink.Addr,
		"PARLEY_HTTP_BASE_URL=https://lists.example.org/")
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "open", "--owner", "olga@example.org")
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "bob@example.org", "carol@example.org")
	name, value := parseTXT(t, mustRun(t, env, "dkim", "keygen", "lists.example.org"))
	if out, code := swaks(t, s.ready["smtp"], "--to", "dev@lists.example.org", "--from", "x@example.org"); code != 0 {
		t.Fatalf("post refused:\n%s", out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(sink.Messages()) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	link := regexp.MustCompile(`List-Unsubscribe: <(https://lists\.example\.org/unsubscribe/[^>]+)>, <mailto:dev-leave@lists\.example\.org>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n`)
	links := map[string]string{}
	for _, m := range sink.Messages() {
		sub := link.FindSubmatch(m.Data)
		if sub == nil {
			t.Fatalf("copy to %v has no one-click link:\n%s", m.To, m.Data)
		}
		links[m.To[0]] = string(sub[1])
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: func(n string) ([]string, error) {
			if n == name {
				return []string{value}, nil
			}
			return nil, io.EOF
		}})
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Errorf("copy to %v: DKIM %v %+v", m.To, err, vs)
		}
	}
	if links["bob@example.org"] == "" || links["bob@example.org"] == links["carol@example.org"] {
		t.Fatalf("links %v: want one per member", links)
	}
	u, _ := url.Parse(links["bob@example.org"])
	local := "http://" + s.ready["http"] + u.Path
	code, body := get(t, local)
	if code != 200 || !strings.Contains(body, "<button") {
		t.Errorf("GET = %d %q, want a page with a button", code, body)
	}
	if ms := mustRun(t, env, "member", "ls", "dev@lists.example.org"); !strings.Contains(ms, "bob@example.org") {
		t.Fatal("GET unsubscribed bob")
	}
	copies := len(sink.Messages())
	resp, err := http.Post(local, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST = %v %v", resp, err)
	}
	resp.Body.Close()
	ms := mustRun(t, env, "member", "ls", "dev@lists.example.org")
	if strings.Contains(ms, "bob@example.org") || !strings.Contains(ms, "carol@example.org") {
		t.Errorf("after POST, members:\n%s", ms)
	}
	told := false
	for deadline := time.Now().Add(30 * time.Second); !told && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, m := range sink.Messages()[copies:] {
			told = told || m.To[0] == "olga@example.org" && strings.Contains(string(m.Data), "bob@example.org left dev@lists.example.org")
		}
	}
	if !told {
		t.Error("the owner was not told that bob left")
	}
	forged := strings.Replace(local, "/unsubscribe/", "/unsubscribe/AAAA", 1)
	if code, _ := get(t, forged); code != 404 {
		t.Errorf("forged token: GET = %d, want 404", code)
	}
	s.stop()
}
