package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestWebArchive: with http.base_url set, every copy's Archived-At is the
// post's permalink in the web archive and List-Archive names the list's
// page before its IMAP mailbox; both answer from the real server. A
// private list's permalink is not found.
func TestWebArchive(t *testing.T) {
	t.Parallel()
	env, s, p := serveForPeople(t, "PARLEY_HTTP_BASE_URL=https://lists.example.org/")
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "open")
	mustRun(t, env, "list", "create", "secret@lists.example.org", "--post-policy", "open", "--archive", "private", "--subscribe", "confirm")
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "reader@example.org")
	mustRun(t, env, "member", "add", "--quiet", "secret@lists.example.org", "reader@example.org")
	p.settle()
	mustRun(t, env, "member", "add", "dev@lists.example.org", "newcomer@example.org")
	if welcome := only(t, p.settle(), "newcomer@example.org"); !strings.Contains(welcome, "On the web: https://lists.example.org/dev@lists.example.org/") {
		t.Errorf("the welcome does not give the web archive's page:\n%s", welcome)
	}
	p.send("ann@example.org", "dev@lists.example.org", "From: Ann <ann@example.org>\nSubject: Opening hours\nMessage-ID: <hours/1@example.org>\n\nWe open at nine.\n")
	p.send("ann@example.org", "secret@lists.example.org", "From: ann@example.org\nSubject: Salaries\nMessage-ID: <pay@example.org>\n\nconfidential\n")
	ms := p.settle()
	if len(ms) != 3 {
		t.Fatalf("%d copies, want 3 (two members of dev, one of secret)", len(ms))
	}
	local := "http://" + s.ready["http"] + "/"
	fetch := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(strings.Replace(u, "https://lists.example.org/", local, 1))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, m := range ms {
		raw := string(m.Data)
		at := strings.Trim(header(raw, "Archived-At"), "<>")
		archive := header(raw, "List-Archive")
		public := strings.Contains(raw, "Subject: [dev]") || strings.Contains(raw, "Opening hours")
		if public {
			if at != "https://lists.example.org/dev@lists.example.org/m/hours%2F1@example.org/" {
				t.Errorf("Archived-At: %q", at)
			}
			if !strings.HasPrefix(archive, "<https://lists.example.org/dev@lists.example.org/>, <imap://") {
				t.Errorf("List-Archive: %q", archive)
			}
			if code, body := fetch(at); code != http.StatusOK || !strings.Contains(body, "We open at nine.") {
				t.Errorf("GET Archived-At: %d\n%s", code, body)
			}
			if code, body := fetch("https://lists.example.org/dev@lists.example.org/atom.xml"); code != http.StatusOK || !strings.Contains(body, "Opening hours") {
				t.Errorf("GET the list's feed: %d\n%s", code, body)
			}
			continue
		}
		if code, _ := fetch(at); code != http.StatusNotFound {
			t.Errorf("GET a private post's permalink %s: %d, want 404", at, code)
		}
	}
	s.stop()
}

// fetchBody GETs u and returns its body, failing on anything but 200; a
// second GET with its validators must be a 304 with no body.
func fetchBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(again.Body)
	again.Body.Close()
	if again.StatusCode != http.StatusNotModified || len(rest) != 0 {
		t.Errorf("GET %s again with its ETag: %d, %d bytes; want 304, none", u, again.StatusCode, len(rest))
	}
	return string(b)
}
