// Package parleybin serves the suites that run the real parley binary
// (end-to-end and fault injection): it builds the binary once per test
// binary, makes data directories PostgreSQL can use when tests run as
// root, and gives each process a clean environment.
package parleybin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Build compiles cmd/parley (with the race detector when race is set)
// into a temporary directory and returns its path and the cleanup.
func Build(race bool) (string, func(), error) {
	dir, err := os.MkdirTemp("", "parley-bin-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "parley")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/parley-list/parley/cmd/parley")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// Dir returns a fresh directory that an unprivileged PostgreSQL account
// can traverse (PostgreSQL runs as another user when tests run as root).
// It is removed when the test passes and kept, its path logged, when the
// test fails.
func Dir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "parley-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("directory kept: %s", base)
			return
		}
		os.RemoveAll(base)
	})
	return base
}

// Env is this process's environment without the developer's own PARLEY_*
// settings, plus extra. DNS lookups go to loopback port 1, where nothing
// answers, so a test never asks a server beyond this machine and every
// lookup fails at once (no DMARC policy, no MX); a test with a DNS server
// of its own sets PARLEY_DNS_RESOLVER in extra, which wins.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	env = append(env, "PARLEY_DNS_RESOLVER=127.0.0.1:1")
	return append(env, extra...)
}
