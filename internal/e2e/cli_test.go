package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-list/parley/internal/testutil/pgtest"
)

// TestCLIBadInput: every kind of bad input gives exit status 2 and one clear
// line on stderr, and changes nothing.
func TestCLIBadInput(t *testing.T) {
	t.Parallel()
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t))
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--owner", "alice@example.org")
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "bob@example.org")
	before := mustRun(t, env, "member", "ls", "dev@lists.example.org", "--json") + mustRun(t, env, "list", "ls", "--json")

	tests := []struct {
		name string
		args []string
		want string // in the stderr line
	}{
		{"malformed list address", []string{"list", "create", "not-an-address"}, "no @"},
		{"reserved list name", []string{"list", "create", "dev-request@lists.example.org"}, "reserved"},
		{"duplicate list", []string{"list", "create", "dev@lists.example.org"}, "already exists"},
		{"unknown policy", []string{"list", "create", "new@lists.example.org", "--post-policy", "closed"}, "unknown post policy"},
		{"unknown archive", []string{"list", "create", "new@lists.example.org", "--archive", "secret"}, "unknown archive"},
		{"malformed owner", []string{"list", "create", "new@lists.example.org", "--owner", "alice"}, "--owner"},
		{"unknown list", []string{"member", "add", "--quiet", "nope@lists.example.org", "carol@example.org"}, "no list nope@lists.example.org"},
		{"malformed member", []string{"member", "add", "--quiet", "dev@lists.example.org", "carol@example.org", "carol at example"}, "malformed"},
		{"duplicate member", []string{"member", "add", "--quiet", "dev@lists.example.org", "carol@example.org", "bob@EXAMPLE.ORG"}, "already"},
		{"remove non-member", []string{"member", "rm", "dev@lists.example.org", "bob@example.org", "zed@example.org"}, "not a member"},
		{"unknown role", []string{"member", "set", "dev@lists.example.org", "bob@example.org", "--role", "king"}, "unknown role"},
		{"nothing to set", []string{"member", "set", "dev@lists.example.org", "bob@example.org"}, "nothing to change"},
		{"delete without --yes", []string{"list", "delete", "dev@lists.example.org"}, "--yes"},
		{"missing argument", []string{"member", "add"}, "want LIST"},
		{"unknown flag", []string{"list", "ls", "--colour"}, "unknown flag"},
		{"unknown command", []string{"lists"}, "unknown command"},
		{"header injection in prefix", []string{"list", "set", "dev@lists.example.org", "--subject-prefix", "[dev]\r\nBcc: x@y"}, "control characters"},
	}
	for _, tc := range tests {
		r := run(t, env, "", tc.args...)
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if r.code != 2 {
			t.Errorf("%s: parley %v: exit %d, want 2 (stderr %q)", tc.name, tc.args, r.code, r.stderr)
			continue
		}
		last := lines[len(lines)-1]
		if !strings.Contains(last, tc.want) || !strings.HasPrefix(last, "parley") {
			t.Errorf("%s: stderr %q, want a parley line containing %q", tc.name, r.stderr, tc.want)
		}
	}
	after := mustRun(t, env, "member", "ls", "dev@lists.example.org", "--json") + mustRun(t, env, "list", "ls", "--json")
	if before != after {
		t.Errorf("bad input changed the database:\nbefore %s\nafter  %s", before, after)
	}
}

// TestBulkMemberFile adds thousands of members from a file and from stdin.
func TestBulkMemberFile(t *testing.T) {
	t.Parallel()
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t))
	mustRun(t, env, "list", "create", "big@lists.example.org")
	var b strings.Builder
	b.WriteString("# exported from the old server\n\n")
	for i := range 3000 {
		b.WriteString(fmt.Sprintf("member%d@example.net\n", i))
	}
	path := filepath.Join(t.TempDir(), "members.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, env, "member", "add", "--quiet", "big@lists.example.org", "--file", path)
	if !strings.Contains(out, "3000 added, 0 skipped") {
		t.Errorf("member add --file: last lines %q", tail(out))
	}
	// Again from stdin, with one new address: refused without
	// --skip-existing, accepted with it.
	r := run(t, env, b.String()+"new@example.net\n", "member", "add", "--quiet", "big@lists.example.org", "--file", "-")
	if r.code != 2 {
		t.Errorf("re-adding existing members: exit %d, want 2", r.code)
	}
	r = run(t, env, b.String()+"new@example.net\n", "member", "add", "--quiet", "big@lists.example.org", "--file", "-", "--skip-existing")
	if r.code != 0 || !strings.Contains(r.stdout, "1 added, 3000 skipped") {
		t.Errorf("--skip-existing: exit %d, %q", r.code, tail(r.stdout))
	}
}

// TestConfigCheck: a bad configuration is reported with its key and exit
// status 2; a good one is printed with secrets hidden.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[smtp]\nlisten = \"nowhere\"\n"), 0o600)
	env := baseEnv(dataDir(t))
	r := run(t, env, "", "config", "check", "--config", bad)
	if r.code != 2 || !strings.Contains(r.stderr, "smtp.listen") {
		t.Errorf("config check (bad): exit %d, %q", r.code, r.stderr)
	}
	r = run(t, append(env, "PARLEY_DATABASE_URL=postgres://u:topsecret@db/parley"), "", "config", "check")
	if r.code != 0 || strings.Contains(r.stdout, "topsecret") || !strings.Contains(r.stdout, "[smtp]") {
		t.Errorf("config check (good): exit %d, %q", r.code, r.stdout)
	}
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 2 {
		lines = lines[len(lines)-2:]
	}
	return strings.Join(lines, " | ")
}
