package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nntplibScript reads the dev list's group with Python's nntplib and
// prints what it found; every article must be the archived bytes with
// the three news fields first.
const nntplibScript = `
import nntplib, sys, subprocess
host, port, parley = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = nntplib.NNTP(host, port, readermode=True)
caps = s.getcapabilities()
assert 'READER' in caps and 'OVER' in caps, caps
groups = {g.group: g for g in s.list()[1]}
assert 'org.example.lists.dev' in groups and 'org.example.lists.staff' not in groups, groups
resp, count, first, last, name = s.group('org.example.lists.dev')
assert (count, first, last) == (3, 1, 3), (count, first, last)
resp, overviews = s.over((1, 3))
for number, over in overviews:
    resp, info = s.article(number)
    lines = info.lines
    assert lines[0].startswith(b'Path: ') and lines[1] == b'Newsgroups: org.example.lists.dev', lines[:3]
    raw = subprocess.run(parley + ['archive', 'show', 'dev@lists.example.org', str(number)], capture_output=True, check=True).stdout
    got = b'\r\n'.join(lines[3:]) + b'\r\n'
    assert got == raw.replace(b'\n', b'\r\n').replace(b'\r\r\n', b'\r\n'), (number, got[:200], raw[:200])
    assert over['message-id'] == info.message_id, (over, info.message_id)
    head = nntplib.decode_header(over['subject'])
    assert head.startswith(('Reading', 'Re: Reading', 'Caf')), head
resp = s.post(b'From: Zed <zed@example.net>\r\nNewsgroups: org.example.lists.dev\r\nSubject: By news\r\nMessage-ID: <bynews@example.net>\r\n\r\nPosted with nntplib.\r\n.leading dot\r\n'.split(b'\r\n'))
assert resp.startswith('240'), resp
resp, count, first, last, name = s.group('org.example.lists.dev')
assert count == 4, count
hostile = [b'From: zed@example.net', b'Newsgroups: org.example.lists.dev', b'Message-ID: <many@example.net>']
hostile += [b'X-H%d: v' % i for i in range(10000)] + [b'', b'body']
try:
    s.post(hostile)
    raise SystemExit('an article with 10,000 header fields was taken')
except nntplib.NNTPTemporaryError as e:
    assert str(e).startswith('441'), e
resp, count, first, last, name = s.group('org.example.lists.dev')
assert count == 4, count
print('ok', count)
`

// TestNewsReaders: Python's nntplib, a real client, reads a list as a
// newsgroup from the real server: capabilities, the group list without
// the private list, GROUP counts, OVER, and every article byte for byte
// as the archive holds it; and posts one, which reaches the member by
// mail once, and one with 10,000 header fields, which is refused.
func TestNewsReaders(t *testing.T) {
	t.Parallel()
	env, s, p := serveForPeople(t)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "open")
	mustRun(t, env, "list", "create", "staff@lists.example.org", "--post-policy", "open", "--archive", "private", "--subscribe", "confirm")
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "reader@example.org")
	p.send("ann@example.org", "dev@lists.example.org", "From: Ann <ann@example.org>\nSubject: Reading lists\nMessage-ID: <n1@example.org>\n\nWhat do they read?\n.\n..two dots\n")
	p.send("bob@example.org", "dev@lists.example.org", "From: bob@example.org\nSubject: Re: Reading lists\nMessage-ID: <n2@example.org>\nReferences: <n1@example.org>\n\nComics.\n")
	p.send("cy@example.org", "dev@lists.example.org", "From: cy@example.org\nSubject: =?utf-8?q?Caf=C3=A9?= hours\nMessage-ID: <n3@example.org>\n\nNine.\n")
	p.settle()
	host, port, _ := strings.Cut(s.ready["nntp"], ":")
	cmd := exec.Command("python3", "-c", nntplibScript, host, port, binary)
	cmd.Env = env // for the CLI the script runs
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok 4") {
		t.Errorf("nntplib: %v\n%s", err, out)
	}
	// The post by news reached the member by mail, once.
	var byNews int
	for _, m := range p.settle() {
		if strings.Contains(string(m.Data), "Subject: By news") && strings.Contains(string(m.Data), "..leading dot") == false {
			byNews++
		}
	}
	if byNews != 1 {
		t.Errorf("%d copies of the post by news reached the member, want 1", byNews)
	}
	s.stop()
}

// TestSuck: suck, a real news client, pulls a whole group into a local
// spool, and every article it stored is the archived post with the
// news fields first.
func TestSuck(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("suck"); err != nil {
		t.Fatal("suck is not installed (apt-get install suck); .ci/run installs it")
	}
	env, s, p := serveForPeople(t)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "open")
	for i := range 5 {
		p.send("ann@example.org", "dev@lists.example.org", fmt.Sprintf("From: ann@example.org\nSubject: Post %d\nMessage-ID: <s%d@example.org>\n\nLine one.\n.dot line\n", i, i))
	}
	p.settle()
	dir := t.TempDir()
	data, msgs, tmp := filepath.Join(dir, "data"), filepath.Join(dir, "msgs"), filepath.Join(dir, "tmp")
	for _, d := range []string{data, msgs, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "sucknewsrc"), []byte("org.example.lists.dev -5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(s.ready["nntp"], ":")
	cmd := exec.Command("suck", host, "-N", port, "-m", "-dd", data, "-dm", msgs, "-dt", tmp, "-q", "-K", "-c")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("suck: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(msgs, "*"))
	if len(files) != 5 {
		t.Fatalf("suck stored %d articles, want 5: %v", len(files), files)
	}
	posts := archiveLs(t, env, "dev@lists.example.org")
	byID := map[string]int64{}
	for _, l := range posts {
		byID[l.MessageID] = l.Article
	}
	for _, f := range files {
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		id := strings.Trim(header(string(got), "Message-ID"), "<>")
		n, ok := byID[id]
		if !ok {
			t.Errorf("%s: no archived post %q", f, id)
			continue
		}
		raw := mustRun(t, env, "archive", "show", "dev@lists.example.org", fmt.Sprint(n))
		_, body, _ := strings.Cut(strings.ReplaceAll(string(got), "\r\n", "\n"), "\nXref: ")
		_, body, _ = strings.Cut(body, "\n")
		if body != strings.ReplaceAll(raw, "\r\n", "\n") {
			t.Errorf("%s differs from article %d:\n%q\nwant\n%q", f, n, body, raw)
		}
	}
	s.stop()
}
