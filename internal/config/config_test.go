package config

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

const examplePath = "../../deploy/parley.example.toml"

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "parley.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if got, want := cfg.SMTP.Listen, HostPort("127.0.0.1:2525"); got != want {
		t.Errorf("smtp.listen = %q, want %q", got, want)
	}
	abs, _ := filepath.Abs("data/outbox")
	if got, want := cfg.Relay, Relay("file://"+abs); got != want {
		t.Errorf("relay = %q, want %q", got, want)
	}
}

func TestLoadFileAndEnv(t *testing.T) {
	t.Parallel()
	p := writeFile(t, `
data_dir = "/var/lib/parley"
hostname = "lists.example.org"
relay = "smtp://127.0.0.1:25"
[smtp]
listen = "0.0.0.0:25"
[log]
format = "json"
level = "debug"
[database]
query_timeout = "5s"
`)
	env := []string{
		"PARLEY_SMTP_LISTEN=127.0.0.1:0",
		"PARLEY_DATABASE_URL=postgres://u:secret@db/parley",
		"PARLEY_HTTP_LISTEN=[::1]:8080",
		"HOME=/root",
	}
	cfg, err := Load(p, env)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"data_dir", cfg.DataDir, "/var/lib/parley"},
		{"hostname", cfg.Hostname, "lists.example.org"},
		{"relay", string(cfg.Relay), "smtp://127.0.0.1:25"},
		{"smtp.listen (env wins)", string(cfg.SMTP.Listen), "127.0.0.1:0"},
		{"http.listen", string(cfg.HTTP.Listen), "[::1]:8080"},
		{"database.url", cfg.Database.URL, "postgres://u:secret@db/parley"},
		{"log.format", string(cfg.Log.Format), "json"},
		{"log.level", string(cfg.Log.Level), "debug"},
		{"imap.listen (default)", string(cfg.IMAP.Listen), "127.0.0.1:1143"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if got, want := cfg.Database.QueryTimeout.D(), 5*time.Second; got != want {
		t.Errorf("database.query_timeout = %v, want %v", got, want)
	}
}

// TestLoadErrors checks that each kind of bad setting is refused with an
// error that names the key or variable, so the operator knows what to fix.
func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file string
		env        []string
		want       string // substring of the error
	}{
		{"unknown key", `smtp_listen = "x"`, nil, "unknown key smtp_listen"},
		{"unknown nested key", "[smtp]\nlisten = \"127.0.0.1:1\"\nport = 2", nil, "unknown key smtp.port"},
		{"bad listen", "[smtp]\nlisten = \"localhost\"", nil, "smtp.listen"},
		{"bad port", "[imap]\nlisten = \"127.0.0.1:70000\"", nil, "bad port"},
		{"bad duration", "[database]\nquery_timeout = \"soon\"", nil, "query_timeout"},
		{"bad relay", `relay = "ftp://x"`, nil, "relay"},
		{"relative file relay", `relay = "file://out"`, nil, "absolute path"},
		{"smtp relay no port", `relay = "smtp://mail.example.org"`, nil, "host:port"},
		{"bad log format", "[log]\nformat = \"xml\"", nil, "log.format"},
		{"bad hostname", `hostname = "bad host"`, nil, "hostname"},
		{"bad demo list", `demo_list = "demo-request@localhost"`, nil, "demo_list"},
		{"bad toml", `data_dir = `, nil, "toml"},
		{"reader url without url", "", []string{"PARLEY_DATABASE_READER_URL=postgres://r@h/db"}, "database.reader_url: needs database.url"},
		{"imaps without cert", "", []string{"PARLEY_IMAPS_LISTEN=127.0.0.1:993"}, "imaps.listen: needs imap.tls_cert"},
		{"imap cert without key", "[imap]\ntls_cert = \"/etc/c.pem\"", nil, "imap.tls_cert and imap.tls_key"},
		{"env bad listen", "", []string{"PARLEY_HTTP_LISTEN=nope"}, "PARLEY_HTTP_LISTEN"},
		{"env bad level", "", []string{"PARLEY_LOG_LEVEL=loud"}, "PARLEY_LOG_LEVEL"},
		{"env bad relay", "", []string{"PARLEY_RELAY=carrier-pigeon"}, "PARLEY_RELAY"},
		{"env bad int", "", []string{"PARLEY_DATABASE_MAX_OPEN_CONNS=many"}, "PARLEY_DATABASE_MAX_OPEN_CONNS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			_, err := Load(path, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load() error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRelayParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         Relay
		wantKind   RelayKind
		wantTarget string
	}{
		{"mx", RelayMX, ""},
		{"smtp://127.0.0.1:2526", RelaySMTP, "127.0.0.1:2526"},
		{"smtp://[::1]:25", RelaySMTP, "[::1]:25"},
		{"file:///var/spool/parley", RelayFile, "/var/spool/parley"},
	}
	for _, tc := range tests {
		kind, target, err := tc.in.Parse()
		if err != nil || kind != tc.wantKind || target != tc.wantTarget {
			t.Errorf("Relay(%q).Parse() = %v, %q, %v; want %v, %q", tc.in, kind, target, err, tc.wantKind, tc.wantTarget)
		}
	}
}

// TestExampleInStep keeps deploy/parley.example.toml identical to what the
// code generates, and checks that the example itself loads to the defaults.
func TestExampleInStep(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := WriteExample(&buf); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(examplePath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("%s is stale; run go test ./internal/config -update", examplePath)
	}
	cfg, err := Load(examplePath, nil)
	if err != nil {
		t.Fatalf("Load(example) = %v", err)
	}
	def, _ := Load("", nil)
	if cfg != def {
		t.Errorf("example loads to %+v, want defaults %+v", cfg, def)
	}
	for _, s := range settings(&cfg) {
		if s.Field.Tag.Get("doc") == "" {
			t.Errorf("key %s has no doc tag", strings.Join(s.Path, "."))
		}
	}
}

func TestEffectiveRedactsSecrets(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", []string{"PARLEY_DATABASE_URL=postgres://parley:hunter2@db.example.org/parley?sslmode=disable"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteEffective(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("effective config shows the password:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "db.example.org") {
		t.Errorf("effective config hides the host:\n%s", buf.String())
	}
}

// TestPersonFriendlyErrors: an unknown PARLEY_* variable is an error
// naming it and the setting it is closest to; each invalid value is one
// error for its own key; a string without quotes in the file says so.
func TestPersonFriendlyErrors(t *testing.T) {
	t.Parallel()
	_, err := Load("", []string{"PARLEY_SMTP_LISTNE=127.0.0.1:25", "PARLEY_CONFIG=x", "PARLEY_TEST_DATABASE_URL=y", "PARLEY_WHATEVER=1"})
	for _, want := range []string{"PARLEY_SMTP_LISTNE: no such setting (did you mean PARLEY_SMTP_LISTEN?)", "PARLEY_WHATEVER: no such setting"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("unknown variables: got %v, want %q", err, want)
		}
	}
	if err != nil && (strings.Contains(err.Error(), "PARLEY_CONFIG") || strings.Contains(err.Error(), "PARLEY_TEST_")) {
		t.Errorf("PARLEY_CONFIG or PARLEY_TEST_* refused: %v", err)
	}

	_, err = Load("", []string{"PARLEY_DELIVERY_PER_DOMAIN=0", "PARLEY_IMAP_MAX_CONNECTIONS_PER_IP=0"})
	if err == nil {
		t.Fatal("invalid values accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if got, want := fmt.Sprint(lines), "[delivery.per_domain: must be at least 1 imap.max_connections_per_ip: must be positive]"; got != want {
		t.Errorf("errors: got %s, want %s", got, want)
	}

	path := filepath.Join(t.TempDir(), "parley.toml")
	if err := os.WriteFile(path, []byte("# site\nhostname = lists.example.org\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path, nil)
	if want := `line 2: the value of hostname needs quotes: hostname = "lists.example.org"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("unquoted string: got %v, want %q", err, want)
	}
}
