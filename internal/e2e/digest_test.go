package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message"

	"github.com/parley-list/parley/internal/testutil/pgtest"
	"github.com/parley-list/parley/internal/testutil/smtpsink"
)

// TestDigests: members in each delivery mode get what their mode says,
// from the real server through a smarthost sink. The regular member gets
// each post; the MIME digest parses with Python's email package and its
// message/rfc822 parts are the archived posts byte for byte; mutt shows
// them as attachments; the plain digest bursts as RFC 1153 says; the
// summary's links fetch the posts over IMAP; every copy carries the
// list's footer with its member's address. Then the scheduler cuts the
// next issue by itself when the list's size threshold is reached.
func TestDigests(t *testing.T) {
	t.Parallel()
	sink := smtpsink.Start(t)
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t), "PARLEY_RELAY=smtp://"+sink.Addr,
		"PARLEY_DIGEST_CHECK_EVERY=500ms")
	s := startServer(t, env)
	const list = "dev@lists.example.org"
	mustRun(t, env, "list", "create", list, "--post-policy", "open", "--footer", "Posted to {list}; you are {member}.")
	mustRun(t, env, "member", "add", "--quiet", list, "reg@one.example")
	for addr, mode := range map[string]string{"mime@two.example": "digest", "plain@three.example": "digest-plain",
		"sum@four.example": "summary", "none@five.example": "nomail"} {
		mustRun(t, env, "member", "add", "--quiet", list, addr, "--delivery", mode)
	}
	for i, subj := range []string{"Build fails on arm64", "Release notes draft", "Re: Build fails on arm64"} {
		args := []string{"--to", list, "--from", fmt.Sprintf("author%d@example.org", i), "--header", "Subject: " + subj,
			"--header", fmt.Sprintf("Message-Id: <d%d@example.org>", i), "--body", fmt.Sprintf("Post %d says hello.", i)}
		if i == 2 {
			args = append(args, "--header", "In-Reply-To: <d0@example.org>")
		}
		if out, code := swaks(t, s.ready["smtp"], args...); code != 0 {
			t.Fatalf("post refused:\n%s", out)
		}
	}
	waitSink(t, sink, 3)
	if out := mustRun(t, env, "digest", "send", list); !strings.Contains(out, "queued dev Digest, Vol 1, Issue 1: articles 1-3, 3 posts") {
		t.Fatalf("digest send: %s", out)
	}
	got := byRcpt(waitSink(t, sink, 6))
	for rcpt, n := range map[string]int{"reg@one.example": 3, "mime@two.example": 1, "plain@three.example": 1, "sum@four.example": 1} {
		if len(got[rcpt]) != n {
			t.Errorf("%s got %d messages, want %d", rcpt, len(got[rcpt]), n)
		}
		for _, m := range got[rcpt] {
			if !bytes.Contains(m, []byte("you are "+rcpt)) {
				t.Errorf("%s's copy lacks its footer:\n%s", rcpt, m)
			}
		}
	}
	if len(got["none@five.example"]) > 0 {
		t.Errorf("the nomail member got %d messages", len(got["none@five.example"]))
	}
	checkMIMEDigest(t, env, got["mime@two.example"][0])
	checkPlainDigest(t, got["plain@three.example"][0])
	checkSummary(t, env, got["sum@four.example"][0])
	if out := mustRun(t, env, "digest", "send", list); !strings.Contains(out, "nothing to send") {
		t.Errorf("a second digest send with nothing new: %s", out)
	}
	if out := mustRun(t, env, "digest", "ls", list); !regexp.MustCompile(`(?m)^1\s+1\s+1-3\s+3\s+\d+\s+manual\s`).MatchString(out) {
		t.Errorf("digest ls:\n%s", out)
	}

	// The scheduler cuts issue 2 by itself once the threshold is reached.
	mustRun(t, env, "list", "set", list, "--digest-size", "1")
	if out, code := swaks(t, s.ready["smtp"], "--to", list, "--from", "author3@example.org", "--header", "Subject: fourth"); code != 0 {
		t.Fatalf("post refused:\n%s", out)
	}
	got = byRcpt(waitSink(t, sink, 10))
	for _, rcpt := range []string{"mime@two.example", "plain@three.example", "sum@four.example"} {
		if n := len(got[rcpt]); n != 2 || !bytes.Contains(got[rcpt][1], []byte("Subject: dev Digest, Vol 1, Issue 2\r\n")) {
			t.Errorf("%s: %d messages, the last not issue 2", rcpt, n)
		}
	}
	s.stop()
}

// waitSink waits up to 30 s for n messages in the sink, and a moment
// more to see that no others follow.
func waitSink(t *testing.T, sink *smtpsink.Sink, n int) []smtpsink.Message {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); len(sink.Messages()) < n && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	ms := sink.Messages()
	if len(ms) != n {
		t.Fatalf("the sink has %d messages, want %d", len(ms), n)
	}
	return ms
}

func byRcpt(ms []smtpsink.Message) map[string][][]byte {
	out := map[string][][]byte{}
	for _, m := range ms {
		for _, r := range m.To {
			out[r] = append(out[r], m.Data)
		}
	}
	return out
}

// checkMIMEDigest parses the MIME digest with Python's email package and
// compares each attached message with the archived post; then mutt lists
// the posts as attachments of the digest.
func checkMIMEDigest(t *testing.T, env []string, msg []byte) {
	t.Helper()
	python := tool(t, "python3", "python3")
	dir := t.TempDir()
	file := filepath.Join(dir, "mime.eml")
	os.WriteFile(file, msg, 0o644)
	script := `
import email, sys
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)
print("top", m.get_content_type(), m["Subject"])
for p in m.iter_parts():
    print("part", p.get_content_type())
    if p.get_content_type() == "multipart/digest":
        for q in p.iter_parts():
            inner = q.get_content()
            print("post", q.get_content_type(), inner["Message-ID"], inner["Subject"])
`
	out := runTool(t, python, "-c", script, file)
	for _, want := range []string{"top multipart/mixed dev Digest, Vol 1, Issue 1", "part text/plain\npart multipart/digest",
		"post message/rfc822 <d0@example.org> Build fails on arm64", "post message/rfc822 <d1@example.org> Release notes draft",
		"post message/rfc822 <d2@example.org> Re: Build fails on arm64", "part text/plain\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("Python reads the MIME digest without %q:\n%s", want, out)
		}
	}
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	mr := e.MultipartReader()
	mr.NextPart()
	dg, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := dg.Header.ContentType()
	for i, part := range bytes.Split(msg, []byte("\r\n--"+params["boundary"]))[1:4] {
		_, body, _ := bytes.Cut(part, []byte("\r\n\r\n"))
		if want := mustRun(t, env, "archive", "show", "dev@lists.example.org", fmt.Sprint(i+1)); string(body) != want {
			t.Errorf("digest part %d differs from archived article %d:\n%q\nwant\n%q", i, i+1, body, want)
		}
	}
	checkMutt(t, msg)
}

// checkMutt opens the digest in mutt (in a pseudo-terminal, as script(1)
// gives it) and reads its attachment menu: each post is a message/rfc822
// attachment named by its subject.
func checkMutt(t *testing.T, msg []byte) {
	t.Helper()
	mutt := tool(t, "mutt", "mutt")
	script := tool(t, "script", "bsdutils")
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "Mail"), 0o700)
	mbox := filepath.Join(home, "digest.mbox")
	lf := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
	os.WriteFile(mbox, append([]byte("From digest@lists.example.org Thu Dec  3 06:00:00 2026\n"), lf...), 0o600)
	screen := filepath.Join(home, "screen")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qfec", "stty rows 50 cols 160; "+mutt+" -n -F /dev/null -R -f "+mbox+
		" -e 'set quit=yes' -e 'unset digest_collapse' -e 'push <view-attachments>'", screen)
	cmd.Env = append(os.Environ(), "HOME="+home, "TERM=vt100")
	keys, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	text := ""
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(text, "Mutt: Attachments") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		b, _ := os.ReadFile(screen)
		text = regexp.MustCompile(`\x1b\[[0-9;?]*[a-zA-Z]`).ReplaceAllString(string(b), "")
	}
	io.WriteString(keys, "qq")
	keys.Close()
	cmd.Wait()
	for _, want := range []string{"Build fails on arm64[message/rfc822", "Release notes draft[message/rfc822", "Re: Build fails on arm64[message/rfc822"} {
		if !strings.Contains(text, want) {
			t.Errorf("mutt's attachment menu lacks %q:\n%q", want, text)
		}
	}
}

// checkPlainDigest bursts the plain digest as RFC 1153 lays it out.
func checkPlainDigest(t *testing.T, msg []byte) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(e.Body)
	body := strings.ReplaceAll(string(b), "\r\n", "\n")
	_, rest, ok := strings.Cut(body, "\n"+strings.Repeat("-", 70)+"\n\n")
	if !ok {
		t.Fatalf("plain digest has no preamble separator:\n%s", body)
	}
	msgs := strings.Split(rest, "\n\n"+strings.Repeat("-", 30)+"\n\n")
	if len(msgs) != 4 {
		t.Fatalf("plain digest bursts into %d pieces, want 3 messages and a trailer:\n%s", len(msgs), body)
	}
	for i, m := range msgs[:3] {
		var fields []string
		head, text, _ := strings.Cut(m, "\n\n")
		for _, line := range strings.Split(head, "\n") {
			name, _, _ := strings.Cut(line, ":")
			fields = append(fields, name)
		}
		if !slices.Equal(fields, []string{"Date", "From", "Subject", "Message-ID"}) || !strings.Contains(text, fmt.Sprintf("Post %d says hello.", i)) {
			t.Errorf("message %d: fields %q, text %q", i, fields, text)
		}
	}
	if end := "End of dev Digest, Vol 1, Issue 1"; !strings.HasPrefix(msgs[3], end+"\n"+strings.Repeat("*", len(end))+"\n") {
		t.Errorf("trailer %q", msgs[3])
	}
}

// checkSummary follows each link of the summary to the post over IMAP.
func checkSummary(t *testing.T, env []string, msg []byte) {
	t.Helper()
	e, _ := message.Read(bytes.NewReader(msg))
	b, _ := io.ReadAll(e.Body)
	text := string(b)
	if !strings.Contains(text, "3 new posts in 2 threads:") || !strings.Contains(text, "(2 new: author0@example.org, author2@example.org)") {
		t.Errorf("summary:\n%s", text)
	}
	links := regexp.MustCompile(`imap://\S+;UID=\d+`).FindAllString(text, -1)
	if len(links) != 2 {
		t.Fatalf("summary has %d links, want one per thread:\n%s", len(links), text)
	}
	for _, link := range links {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		var mailbox string
		var validity uint32
		var uid imap.UID
		fmt.Sscanf(strings.NewReplacer(";UIDVALIDITY=", " ", "/;UID=", " ").Replace(strings.TrimPrefix(u.Path, "/")), "%s %d %d", &mailbox, &validity, &uid)
		c, err := imapclient.DialInsecure(u.Host, nil)
		if err != nil {
			t.Fatalf("link %s: %v", link, err)
		}
		c.Login("anonymous", "e2e").Wait()
		if sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil || sel.UIDValidity != validity {
			t.Errorf("link %s: select %v, UIDVALIDITY %v", link, err, sel)
		}
		body := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{body}}).Collect()
		if err != nil || len(msgs) != 1 || string(msgs[0].FindBodySection(body)) != mustRun(t, env, "archive", "show", "dev@lists.example.org", fmt.Sprint(uid)) {
			t.Errorf("link %s does not fetch article %d: %v", link, uid, err)
		}
		c.Close()
	}
}
