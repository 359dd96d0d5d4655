package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-list/parley/internal/testutil/pgtest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeEmbedded is the newcomer's path: serve with no database URL on a
// fresh data directory, use the CLI beside it, stop with SIGTERM, start
// again and find everything still there, with no postgres left behind.
func TestServeEmbedded(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	env := baseEnv(data)

	s := startServer(t, env)
	base := "http://" + s.ready["http"]
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ok", "/metrics": "parley_build_info"} {
		code, body := get(t, base+path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %.80q, want 200 containing %q", path, code, body, want)
		}
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{"parley_queue_copies{state=\"pending\"} 0", "parley_inbound_waiting 0",
		"parley_imap_sessions 0", "go_sql_max_open_connections{db_name=\"parley\"}"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if out := mustRun(t, env, "list", "ls"); !strings.Contains(out, "demo@localhost") {
		t.Errorf("list ls on first start = %q, want the demo list", out)
	}
	mustRun(t, env, "list", "create", "dev@lists.example.org", "--owner", "alice@example.org",
		"--post-policy", "members", "--archive", "public", "--subject-prefix", "[dev]")
	mustRun(t, env, "member", "add", "--quiet", "dev@lists.example.org", "bob@example.org")
	s.stop()
	noPostgresLeft(t, data, 5*time.Second)
	if _, err := os.Stat(filepath.Join(data, "outbox")); err != nil {
		t.Errorf("outbox for the file relay: %v", err)
	}

	s = startServer(t, env)
	var ms []struct{ Address, Role string }
	if err := json.Unmarshal([]byte(mustRun(t, env, "member", "ls", "dev@lists.example.org", "--json")), &ms); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(ms), "[{alice@example.org owner} {bob@example.org member}]"; got != want {
		t.Errorf("members after restart = %s, want %s", got, want)
	}
	s.stop()
	noPostgresLeft(t, data, 5*time.Second)
}

// TestServeKilled: even SIGKILL of parley leaves no postgres running, and
// the next start recovers the cluster.
func TestServeKilled(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	env := baseEnv(data)
	s := startServer(t, env)
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	noPostgresLeft(t, data, 20*time.Second)
	s = startServer(t, env)
	if code, _ := get(t, "http://"+s.ready["http"]+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz after recovery = %d", code)
	}
	s.stop()
}

// TestSecondServeRefused: one serve per data directory.
func TestSecondServeRefused(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	env := baseEnv(data)
	s := startServer(t, env)
	r := run(t, env, "", "serve")
	if r.code == 0 || !strings.Contains(r.stderr, "another parley serve") {
		t.Errorf("second serve: exit %d, stderr %q; want failure naming the running serve", r.code, r.stderr)
	}
	s.stop()
}

// TestCommandsWithoutServe: CLI commands start the embedded cluster for
// their own duration, several at once without conflict, and leave nothing
// running.
func TestCommandsWithoutServe(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	env := baseEnv(data)
	mustRun(t, env, "list", "create", "dev@lists.example.org")
	var wg sync.WaitGroup
	results := make([]result, 4)
	for i := range results {
		wg.Go(func() {
			results[i] = run(t, env, "", "member", "add", "--quiet", "dev@lists.example.org", fmt.Sprintf("user%d@example.org", i))
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("concurrent member add #%d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	out := mustRun(t, env, "list", "show", "dev@lists.example.org", "--json")
	var l struct{ Members int }
	if err := json.Unmarshal([]byte(out), &l); err != nil || l.Members != 4 {
		t.Errorf("members after concurrent adds = %d (%v), want 4", l.Members, err)
	}
	noPostgresLeft(t, data, 10*time.Second)
}

// TestExternalDatabase runs serve against a database URL (no embedded
// cluster) and checks readiness.
func TestExternalDatabase(t *testing.T) {
	t.Parallel()
	env := baseEnv(dataDir(t), "PARLEY_DATABASE_URL="+pgtest.NewDSN(t))
	s := startServer(t, env)
	if code, _ := get(t, "http://"+s.ready["http"]+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz = %d", code)
	}
	if out := mustRun(t, env, "migrate"); !strings.HasPrefix(out, "schema at version") {
		t.Errorf("migrate = %q", out)
	}
	s.stop()
}
