package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	env, s, p := newsServer(t, "suck")
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
	spoolMatchesArchive(t, env, "dev@lists.example.org", files)
	s.stop()
}

// newsServer starts a server with an open list, dev@lists.example.org,
// for a news client that must be installed (its Debian package has its
// name; .ci/run installs it).
func newsServer(t *testing.T, client string) ([]string, *server, *person) {
	t.Helper()
	if _, err := exec.LookPath(client); err != nil {
		t.Fatalf("%s is not installed (apt-get install %[1]s); .ci/run installs it", client)
	}
	env, s, p := serveForPeople(t)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "open")
	return env, s, p
}

// newsFields are the fields a served article gets from the server.
var newsFields = regexp.MustCompile(`(?m)^(Path|Newsgroups|Xref): .*\n`)

// spoolMatchesArchive checks articles a news client stored as files:
// each is an archived post of list, byte for byte after the news fields
// parley puts first (Path, Newsgroups, Xref).
func spoolMatchesArchive(t *testing.T, env []string, list string, files []string) {
	t.Helper()
	byID := map[string]int64{}
	for _, l := range archiveLs(t, env, list) {
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
		raw := strings.ReplaceAll(mustRun(t, env, "archive", "show", list, fmt.Sprint(n)), "\r\n", "\n")
		// A post that came by news has its own news fields, which give
		// way to the server's.
		head, text, _ := strings.Cut(raw, "\n\n")
		head = newsFields.ReplaceAllString(head+"\n", "")
		raw = head + "\n" + text
		_, body, _ := strings.Cut(strings.ReplaceAll(string(got), "\r\n", "\n"), "\nXref: ")
		_, body, _ = strings.Cut(body, "\n")
		if body != raw {
			t.Errorf("%s differs from article %d:\n%q\nwant\n%q", f, n, body, raw)
		}
	}
}

// TestSlrnpull: slrnpull, slrn's offline puller, copies a group into its
// spool, every article the archived post; then posts what slrn left in
// its out.going directory (slrn's posting path when reading offline),
// which reaches the member by mail once and the archive once, and the
// next pull brings it back.
func TestSlrnpull(t *testing.T) {
	t.Parallel()
	env, s, p := newsServer(t, "slrnpull")
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "reader@example.org")
	for i := range 3 {
		p.send("ann@example.org", "dev@lists.example.org", fmt.Sprintf("From: ann@example.org\nSubject: Pull %d\nMessage-ID: <p%d@example.org>\n\nLine one.\n.dot line\n", i, i))
	}
	p.settle()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "slrnpull.conf"), []byte("default 100 14 0\norg.example.lists.dev\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pull := func(args ...string) {
		t.Helper()
		cmd := exec.Command("slrnpull", append([]string{"-d", root, "-h", s.ready["nntp"]}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("slrnpull %v: %v\n%s", args, err, out)
		}
	}
	spool := filepath.Join(root, "news", "org", "example", "lists", "dev")
	pull()
	files, _ := filepath.Glob(filepath.Join(spool, "[0-9]*"))
	if len(files) != 3 {
		t.Fatalf("slrnpull stored %d articles, want 3: %v", len(files), files)
	}
	spoolMatchesArchive(t, env, "dev@lists.example.org", files)

	// slrn writes a post to out.going as a file named X…; slrnpull posts
	// it (without dot-stuffing: slrnpull 1.0.3 sends a line that starts
	// with a dot as it is, so the post here has none).
	post := "From: Zed <zed@example.net>\nNewsgroups: org.example.lists.dev\nSubject: From slrn\nMessage-ID: <slrn1@example.net>\n\nPosted offline.\n"
	if err := os.WriteFile(filepath.Join(root, "out.going", "X1"), []byte(post), 0o644); err != nil {
		t.Fatal(err)
	}
	pull("--post-only")
	if left, _ := filepath.Glob(filepath.Join(root, "out.going", "*", "*")); len(left) > 0 {
		t.Errorf("the server rejected the post: %v", left)
	}
	var copies int
	for _, m := range sentTo(p.settle(), "reader@example.org") {
		if header(string(m.Data), "Subject") == "From slrn" {
			copies++
		}
	}
	if copies != 1 {
		t.Errorf("%d copies of the post from slrn reached the member, want 1", copies)
	}
	pull()
	files, _ = filepath.Glob(filepath.Join(spool, "[0-9]*"))
	if len(files) != 4 {
		t.Fatalf("after the post slrnpull has %d articles, want 4", len(files))
	}
	spoolMatchesArchive(t, env, "dev@lists.example.org", files)
	s.stop()
}

// TestPullnews: INN's pullnews copies a group from one parley to another
// (posting each article as a newsreader would), and the second server
// archives each once and mails it to its member; a second run copies
// only what is new.
func TestPullnews(t *testing.T) {
	t.Parallel()
	pullnews, err := exec.LookPath("pullnews")
	if err != nil {
		pullnews = "/usr/lib/news/bin/pullnews" // where Debian's inn2 puts it
	}
	if _, err := os.Stat(pullnews); err != nil {
		t.Fatal("pullnews is not installed (apt-get install inn2); .ci/run installs it")
	}
	envA, a, pa := serveForPeople(t)
	envB, b, pb := serveForPeople(t)
	for _, env := range [][]string{envA, envB} {
		mustRun(t, env, "list", "create", "dev@lists.example.org", "--post-policy", "open")
	}
	mustRun(t, envB, "member", "add", "--quiet", "dev@lists.example.org", "reader@example.org")
	for i := range 4 {
		pa.send("ann@example.org", "dev@lists.example.org", fmt.Sprintf("From: ann@example.org\nSubject: Copied %d\nMessage-ID: <c%d@example.org>\n\nLine one.\n.dot line\n", i, i))
	}
	pa.settle()
	dir := t.TempDir()
	marks := filepath.Join(dir, "pullnews.marks")
	if err := os.WriteFile(marks, []byte(a.ready["nntp"]+"\n\torg.example.lists.dev\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() {
		t.Helper()
		cmd := exec.Command(pullnews, "-c", marks, "-s", b.ready["nntp"], "-R", "-l", filepath.Join(dir, "log"))
		cmd.Env = append(os.Environ(), "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pullnews: %v\n%s", err, out)
		}
	}
	run()
	copied := archiveLs(t, envB, "dev@lists.example.org")
	if len(copied) != 4 {
		t.Fatalf("the second server archived %d posts, want 4", len(copied))
	}
	for _, l := range copied {
		want := mustRun(t, envA, "archive", "show", "dev@lists.example.org", fmt.Sprint(l.Article))
		got := mustRun(t, envB, "archive", "show", "dev@lists.example.org", fmt.Sprint(l.Article))
		if !strings.HasSuffix(got, want[strings.Index(want, "From: "):]) {
			t.Errorf("article %d copied as\n%q\nwant it to end with the original's\n%q", l.Article, got, want)
		}
	}
	pa.send("bob@example.org", "dev@lists.example.org", "From: bob@example.org\nSubject: Later\nMessage-ID: <later@example.org>\n\nNew.\n")
	pa.settle()
	run()
	if n := len(archiveLs(t, envB, "dev@lists.example.org")); n != 5 {
		t.Errorf("after the second run the second server has %d posts, want 5", n)
	}
	if n := len(sentTo(pb.settle(), "reader@example.org")); n != 5 {
		t.Errorf("the second server's member got %d copies, want 5", n)
	}
	a.stop()
	b.stop()
}
