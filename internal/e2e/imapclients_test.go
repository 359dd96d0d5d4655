package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tool finds an external client that .ci/run installs.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (apt-get install %s); .ci/run installs it", name, pkg)
	}
	return path
}

func runTool(t *testing.T, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(path), args, err, out)
	}
	return string(out)
}

// TestMbsyncSync: mbsync (isync) pulls a list into a Maildir, then pulls
// again after new posts; the Maildir then holds every archived message,
// byte for byte (mbsync stores Maildir files with LF line ends and adds an
// X-TUID header, so the comparison undoes only those two).
func TestMbsyncSync(t *testing.T) {
	t.Parallel()
	mbsync := tool(t, "mbsync", "isync")
	data := dataDir(t)
	env := baseEnv(data)
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--owner", "owner@example.org", "--post-policy", "open")
	post := func(i int) {
		if out, code := swaks(t, s.ready["smtp"], "--to", "dev@lists.example.org", "--from", "bob@example.org",
			"--header", fmt.Sprintf("Subject: post %d", i), "--body", fmt.Sprintf("body %d", i)); code != 0 {
			t.Fatalf("post %d refused (exit %d):\n%s", i, code, out)
		}
	}
	host, port, _ := strings.Cut(s.ready["imap"], ":")
	dir := t.TempDir()
	rc := filepath.Join(dir, "mbsyncrc")
	// SyncState *: mbsync keeps its state inside the Maildir, not in the
	// shared ~/.mbsync, where other runs' UIDVALIDITY would confuse it.
	if err := os.MkdirAll(filepath.Join(dir, "mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(rc, []byte(fmt.Sprintf(`IMAPAccount parley
Host %s
Port %s
User anonymous
Pass e2e
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account parley

MaildirStore local
Path %[3]s/
Inbox %[3]s/INBOX
SubFolders Verbatim

Channel dev
Far :remote:dev@lists.example.org
Near :local:dev
Sync Pull
Create Near
SyncState *
`, host, port, filepath.Join(dir, "mail"))), 0o600)

	for i := 1; i <= 3; i++ {
		post(i)
	}
	runTool(t, mbsync, "-c", rc, "dev")
	checkMaildir(t, env, filepath.Join(dir, "mail", "dev"), 3)
	for i := 4; i <= 5; i++ {
		post(i)
	}
	runTool(t, mbsync, "-c", rc, "dev")
	checkMaildir(t, env, filepath.Join(dir, "mail", "dev"), 5)
	s.stop()
}

// xTUID is the header line mbsync adds to every message it stores, to
// find it again if the run is interrupted.
var xTUID = regexp.MustCompile(`(?m)^X-TUID: [^\n]*\n`)

// checkMaildir compares the Maildir with the archive, article by article
// (mbsync names files ...,U=<uid>:...).
func checkMaildir(t *testing.T, env []string, maildir string, want int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(maildir, "*", "*,U=*"))
	if len(files) != want {
		t.Fatalf("Maildir has %d messages, want %d: %v", len(files), want, files)
	}
	for i := 1; i <= want; i++ {
		m, _ := filepath.Glob(filepath.Join(maildir, "*", fmt.Sprintf("*,U=%d:*", i)))
		if len(m) != 1 {
			t.Fatalf("article %d: %d Maildir files", i, len(m))
		}
		got, _ := os.ReadFile(m[0])
		got = xTUID.ReplaceAll(got, nil)
		raw := mustRun(t, env, "archive", "show", "dev@lists.example.org", fmt.Sprint(i))
		if want := bytes.ReplaceAll([]byte(raw), []byte("\r\n"), []byte("\n")); !bytes.Equal(got, want) {
			t.Errorf("article %d differs:\ngot  %q\nwant %q", i, got, want)
		}
	}
}

// TestPythonImaplib: Python's imaplib, a client with its own parser,
// lists, selects, fetches and searches.
func TestPythonImaplib(t *testing.T) {
	t.Parallel()
	python := tool(t, "python3", "python3")
	data := dataDir(t)
	env := baseEnv(data)
	s := startServer(t, env)
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--owner", "owner@example.org", "--post-policy", "open")
	for i, subj := range []string{"Widgets are great", "zebra crossing", "more widgets"} {
		if out, code := swaks(t, s.ready["smtp"], "--to", "dev@lists.example.org", "--from", "bob@example.org",
			"--header", "Subject: "+subj, "--body", fmt.Sprintf("body %d", i)); code != 0 {
			t.Fatalf("post refused (exit %d):\n%s", code, out)
		}
	}
	host, port, _ := strings.Cut(s.ready["imap"], ":")
	script := `
import imaplib, sys
c = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
c.login("anonymous", "e2e")
print("list", [l.decode() for l in c.list()[1]])
print("select", c.select('"dev@lists.example.org"', readonly=True))
print("search", c.uid("SEARCH", None, "SUBJECT", "widgets"))
typ, d = c.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("fetch", d[0][0].decode(), repr(d[0][1].decode()))
try:
    print("append", c.append('"dev@lists.example.org"', None, None, b"Subject: x\r\n\r\nx\r\n"))
except imaplib.IMAP4.error as e:
    print("append refused", e)
c.logout()
`
	out := runTool(t, python, "-c", script, host, port)
	for _, want := range []string{
		`"/" "dev@lists.example.org"`,
		"select ('OK', [b'3'])",
		"search ('OK', [b'1 3'])",
		`'Subject: zebra crossing\r\n\r\n'`,
		"append ('NO', [b'[NOPERM] This archive is read-only'])",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("imaplib transcript lacks %q:\n%s", want, out)
		}
	}
	s.stop()
}
