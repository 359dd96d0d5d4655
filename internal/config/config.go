// Package config owns parley's deployment configuration: one strict TOML
// file plus PARLEY_* environment overrides, with every default in code.
//
// Only what an operator sets once per installation lives here (listeners,
// data directory, database, relay, logging). Per-list policy lives in
// PostgreSQL and changes through the CLI or command mail, never by editing
// this file.
//
// The struct below is the single source of truth: each field's `toml` tag
// names the key, its `doc` tag documents it, and the environment variable is
// derived from the key's path (smtp.listen -> PARLEY_SMTP_LISTEN). The
// example file in deploy/ is generated from the same struct and a test keeps
// it in step.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/parley-list/parley/internal/mailaddr"
)

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "PARLEY_"

// Config is the whole deployment configuration.
type Config struct {
	DataDir  string   `toml:"data_dir" doc:"Directory for parley's own state: the embedded PostgreSQL cluster (when database.url is empty) and the default file relay's outbox. Created on first start."`
	Hostname string   `toml:"hostname" doc:"Name this server uses for itself: SMTP greeting, Message-IDs it makes, and URLs it prints."`
	DemoList string   `toml:"demo_list" doc:"A list created at start-up when the database has no list at all, so a newcomer has something to post to. Empty disables it."`
	Relay    Relay    `toml:"relay" doc:"Where outbound mail goes: smtp://host:port (a smarthost; smtp://user:password@host:port to log in with AUTH PLAIN, after STARTTLS when offered), mx (direct delivery), or file:///dir (one .eml file per copy). Empty means file://<data_dir>/outbox." secret:"true"`
	Database Database `toml:"database"`
	SMTP     SMTP     `toml:"smtp"`
	LMTP     LMTP     `toml:"lmtp"`
	IMAP     IMAP     `toml:"imap"`
	IMAPS    IMAPS    `toml:"imaps"`
	NNTP     NNTP     `toml:"nntp"`
	NNTPS    NNTPS    `toml:"nntps"`
	HTTP     HTTP     `toml:"http"`
	Delivery Delivery `toml:"delivery"`
	Digest   Digest   `toml:"digest"`
	DNS      DNS      `toml:"dns"`
	Log      Log      `toml:"log"`
}

// DNS configures the lookups parley makes itself.
type DNS struct {
	Resolver string `toml:"resolver" doc:"The DNS server (host:port) for DMARC policy lookups and direct MX delivery. Empty uses the system's resolver (/etc/resolv.conf)."`
}

// Delivery configures the outbound workers.
type Delivery struct {
	Workers    int      `toml:"workers" doc:"Copies sent at the same time by this process; 0 runs no delivery here (an intake-only process, when others deliver)."`
	PerDomain  int      `toml:"per_domain" doc:"Copies sent at the same time to one destination domain (direct MX delivery; a smarthost is one destination)."`
	RetryFirst Duration `toml:"retry_first" doc:"Wait before the first retry of a copy that got a temporary failure; doubles each time."`
	RetryMax   Duration `toml:"retry_max" doc:"Longest wait between retries."`
	GiveUp     Duration `toml:"give_up" doc:"Age after which a copy that still fails temporarily is given up on."`
	Lease      Duration `toml:"lease" doc:"How long a worker owns the copies it claimed without renewing; copies of a worker that died are sent again after this."`
	MXPort     int      `toml:"mx_port" doc:"Port of the mail exchangers for relay = mx (25; another only for tests)."`
	Timeout    Duration `toml:"timeout" doc:"Longest wait for any one reply of a relay or mail exchanger (RFC 5321 suggests minutes); a copy whose relay stays silent longer is retried later."`
}

// Digest configures the digest scheduler (each list's schedule and size
// threshold are list settings).
type Digest struct {
	CheckEvery Duration `toml:"check_every" doc:"How often each process looks for digest issues that are due (by size or by schedule); 0 looks every minute."`
}

// Database says how parley reaches PostgreSQL.
type Database struct {
	URL          string   `toml:"url" doc:"PostgreSQL connection URL (postgres://user:pass@host/db?sslmode=...). Empty runs a private PostgreSQL cluster under data_dir, reached over a Unix socket and stopped when parley exits." secret:"true"`
	ReaderURL    string   `toml:"reader_url" doc:"Connection URL of a read-only role (deploy/postgres-roles.sql: parley_reader) for the IMAP archive, which then cannot change anything even if it tried. Needs database.url. Empty: IMAP uses database.url." secret:"true"`
	MaxOpenConns int      `toml:"max_open_conns" doc:"Connections of the main pool (intake, delivery, command mail). The IMAP archive reads through a pool of its own, half as large, so readers cannot starve intake."`
	QueryTimeout Duration `toml:"query_timeout" doc:"Deadline for one ordinary query or transaction."`
}

// SMTP configures mail intake.
type SMTP struct {
	Listen              HostPort `toml:"listen" doc:"host:port for SMTP intake (posts and list service addresses); port 0 picks a free port, reported in the readiness line."`
	TLSCert             string   `toml:"tls_cert" doc:"PEM certificate chain for STARTTLS (and the LMTP listener). Empty: no STARTTLS."`
	TLSKey              string   `toml:"tls_key" doc:"PEM private key for tls_cert." secret:"true"`
	MaxMessageBytes     int64    `toml:"max_message_bytes" doc:"Largest message accepted, server-wide (advertised as SIZE; keep it at least your front MTA's limit). A list can set a smaller one."`
	MaxRecipients       int      `toml:"max_recipients" doc:"Most recipients in one SMTP transaction; more get 452 and are sent again by the client."`
	MaxHeaderBytes      int      `toml:"max_header_bytes" doc:"Largest header block accepted."`
	MaxHeaderFields     int      `toml:"max_header_fields" doc:"Most header fields in one message."`
	MaxMIMEDepth        int      `toml:"max_mime_depth" doc:"Deepest multipart nesting accepted."`
	MaxLineLength       int      `toml:"max_line_length" doc:"Longest line accepted in commands and message data."`
	MaxConnections      int      `toml:"max_connections" doc:"Most simultaneous SMTP connections; more are answered 421 and closed."`
	MaxConnectionsPerIP int      `toml:"max_connections_per_ip" doc:"Most simultaneous SMTP connections from one client address."`
	CommandTimeout      Duration `toml:"command_timeout" doc:"How long to wait for the client's next command."`
	DataTimeout         Duration `toml:"data_timeout" doc:"How long the whole DATA transfer may take; a slower sender gets 451 and retries."`
	TrustedAuthServIDs  string   `toml:"trusted_authserv_ids" doc:"Comma-separated authserv-ids of front MTAs whose Authentication-Results fields are believed (dkim=pass or dmarc=pass aligned with From: authenticates a held post's author, who is then told it awaits approval). The MTA must remove such fields that arrive from outside. Empty: parley verifies DKIM itself."`
}

// LMTP configures the optional LMTP listener for a front MTA.
type LMTP struct {
	Listen string `toml:"listen" doc:"LMTP listener for sites that put Postfix or Exim in front: host:port, or unix:/path/to/socket. Empty: none."`
}

// IMAP configures the read-only archive listener.
type IMAP struct {
	Listen  HostPort `toml:"listen" doc:"host:port for IMAP (the read-only archive); port 0 picks a free port, reported in the readiness line."`
	TLSCert string   `toml:"tls_cert" doc:"PEM certificate chain for IMAP: offered as STARTTLS on imap.listen, and used by imaps.listen. Empty: no TLS."`
	TLSKey  string   `toml:"tls_key" doc:"PEM private key for imap.tls_cert." secret:"true"`
	// PublicURL is what members' mail clients are sent to.
	PublicURL           string `toml:"public_url" doc:"The archive's IMAP URL as readers reach it (RFC 5092), the base of List-Archive and Archived-At in every copy, e.g. imap://lists.example.org. Empty: imap://<hostname>, with the port of imap.listen unless it is 143."`
	MaxConnections      int    `toml:"max_connections" doc:"Most simultaneous IMAP connections (imap and imaps together); more are told BYE and closed."`
	MaxConnectionsPerIP int    `toml:"max_connections_per_ip" doc:"Most simultaneous IMAP connections from one client address (raise it for readers behind one NAT)."`
}

// NNTP configures the newsgroup listener (the archive as newsgroups).
type NNTP struct {
	Listen              HostPort `toml:"listen" doc:"host:port for NNTP (every list a newsgroup, read from the archive); port 0 picks a free port, reported in the readiness line as \"nntp\"."`
	MaxConnections      int      `toml:"max_connections" doc:"Most simultaneous NNTP connections; more are answered 400 and closed."`
	MaxConnectionsPerIP int      `toml:"max_connections_per_ip" doc:"Most simultaneous NNTP connections from one client address."`
	TLSCert             string   `toml:"tls_cert" doc:"PEM certificate chain for NNTP: offered as STARTTLS (RFC 4642) on nntp.listen, and used by nntps.listen. Empty: no TLS (members then log in from this machine only)."`
	TLSKey              string   `toml:"tls_key" doc:"PEM private key for nntp.tls_cert." secret:"true"`
}

// NNTPS configures the implicit-TLS newsgroup listener.
type NNTPS struct {
	Listen string `toml:"listen" doc:"host:port for NNTP over TLS from the first byte (usually port 563); needs nntp.tls_cert. Empty: none."`
}

// IMAPS configures the implicit-TLS archive listener.
type IMAPS struct {
	Listen string `toml:"listen" doc:"host:port for IMAP over implicit TLS (port 993 in production); needs imap.tls_cert. Empty: none."`
}

// HTTP configures the health, metrics and (later) web listener.
type HTTP struct {
	Listen  HostPort `toml:"listen" doc:"host:port for the web archive, /healthz, /readyz, /metrics and one-click unsubscribe; port 0 picks a free port."`
	BaseURL string   `toml:"base_url" doc:"Public URL of this HTTP listener (e.g. https://lists.example.org), directly or behind your proxy. When set, every copy carries a one-click unsubscribe link (RFC 8058), Archived-At is the post's page in the web archive, and feeds link there. An https URL makes the members' login cookie Secure. Empty: mailto links and IMAP URLs only."`
	TLSCert string   `toml:"tls_cert" doc:"PEM certificate chain: serve HTTPS on http.listen. Empty: plain HTTP (put a TLS proxy in front)."`
	TLSKey  string   `toml:"tls_key" doc:"PEM private key for http.tls_cert." secret:"true"`
	// Templates lets a site restyle the web archive.
	Templates string `toml:"templates" doc:"Directory of the site's own web archive templates (*.html, Go html/template), each replacing the built-in page or part of the same name. Empty: the built-in ones."`
}

// Log configures logging to standard error.
type Log struct {
	Format LogFormat `toml:"format" doc:"Log line format: text or json."`
	Level  LogLevel  `toml:"level" doc:"Least severe level logged: debug, info, warn or error."`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		DataDir:  "./data",
		Hostname: "localhost",
		DemoList: "demo@localhost",
		Database: Database{MaxOpenConns: 20, QueryTimeout: Duration(30 * time.Second)},
		SMTP: SMTP{
			Listen:              "127.0.0.1:2525",
			MaxMessageBytes:     32 << 20,
			MaxRecipients:       100,
			MaxHeaderBytes:      256 << 10,
			MaxHeaderFields:     1000,
			MaxMIMEDepth:        32,
			MaxLineLength:       64 << 10,
			MaxConnections:      1000,
			MaxConnectionsPerIP: 50,
			CommandTimeout:      Duration(5 * time.Minute),
			DataTimeout:         Duration(10 * time.Minute),
		},
		IMAP: IMAP{Listen: "127.0.0.1:1143", MaxConnections: 1000, MaxConnectionsPerIP: 20},
		NNTP: NNTP{Listen: "127.0.0.1:1119", MaxConnections: 1000, MaxConnectionsPerIP: 20},
		HTTP: HTTP{Listen: "127.0.0.1:8025"},
		Delivery: Delivery{Workers: 32, PerDomain: 4, RetryFirst: Duration(5 * time.Minute),
			RetryMax: Duration(4 * time.Hour), GiveUp: Duration(48 * time.Hour), Lease: Duration(15 * time.Minute), MXPort: 25,
			Timeout: Duration(5 * time.Minute)},
		Digest: Digest{CheckEvery: Duration(time.Minute)},
		Log:    Log{Format: "text", Level: "info"},
	}
}

// Load reads the TOML file at path (none when path is empty), applies the
// environment from env (os.Environ form) and validates the result. Every
// problem is reported, each naming its key or variable.
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		if err := decodeStrict(f, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w%s", path, err, quoteHint(path, err))
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	cfg.resolve()
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// decodeStrict decodes TOML and refuses keys that the struct does not have,
// so a typo never silently leaves a default in force.
func decodeStrict(r io.Reader, cfg *Config) error {
	md, err := toml.NewDecoder(r).Decode(cfg)
	if err != nil {
		return err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	return nil
}

// resolve fills the settings whose defaults depend on other settings.
func (c *Config) resolve() {
	if c.Relay == "" {
		abs, err := filepath.Abs(filepath.Join(c.DataDir, "outbox"))
		if err != nil {
			abs = filepath.Join(c.DataDir, "outbox")
		}
		c.Relay = Relay("file://" + abs)
	}
}

// Validate reports every invalid setting at once.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("data_dir: must not be empty"))
	}
	if err := checkHostname(c.Hostname); err != nil {
		errs = append(errs, fmt.Errorf("hostname: %w", err))
	}
	if c.DemoList != "" {
		if _, err := mailaddr.ParseList(c.DemoList); err != nil {
			errs = append(errs, fmt.Errorf("demo_list: %w", err))
		}
	}
	errs = append(errs, c.SMTP.validate()...)
	if c.LMTP.Listen != "" {
		if path, ok := strings.CutPrefix(c.LMTP.Listen, "unix:"); ok {
			if !filepath.IsAbs(path) {
				errs = append(errs, fmt.Errorf("lmtp.listen: %q: unix socket path must be absolute", c.LMTP.Listen))
			}
		} else if err := new(HostPort).UnmarshalText([]byte(c.LMTP.Listen)); err != nil {
			errs = append(errs, fmt.Errorf("lmtp.listen: %w", err))
		}
	}
	errs = append(errs, c.validateIMAP()...)
	if c.Delivery.Workers < 0 {
		errs = append(errs, errors.New("delivery.workers: must not be negative"))
	}
	if c.Delivery.PerDomain < 1 {
		errs = append(errs, errors.New("delivery.per_domain: must be at least 1"))
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		errs = append(errs, errors.New("http.tls_cert and http.tls_key: set both or neither"))
	}
	if c.HTTP.BaseURL != "" {
		if u, err := url.Parse(c.HTTP.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("http.base_url: %q is not an http(s) URL", c.HTTP.BaseURL))
		}
	}
	if c.DNS.Resolver != "" {
		if err := new(HostPort).UnmarshalText([]byte(c.DNS.Resolver)); err != nil {
			errs = append(errs, fmt.Errorf("dns.resolver: %w", err))
		}
	}
	if c.Delivery.MXPort < 1 || c.Delivery.MXPort > 65535 {
		errs = append(errs, errors.New("delivery.mx_port: must be a port number"))
	}
	if c.Delivery.Lease.D() < time.Second {
		errs = append(errs, errors.New("delivery.lease: must be at least 1s"))
	}
	if c.IMAP.MaxConnections < 1 {
		errs = append(errs, errors.New("imap.max_connections: must be positive"))
	}
	if c.IMAP.MaxConnectionsPerIP < 1 {
		errs = append(errs, errors.New("imap.max_connections_per_ip: must be positive"))
	}
	if c.Delivery.Timeout.D() < time.Second {
		errs = append(errs, errors.New("delivery.timeout: must be at least 1s"))
	}
	if c.Delivery.RetryFirst <= 0 {
		errs = append(errs, errors.New("delivery.retry_first: must be positive"))
	} else if c.Delivery.RetryMax < c.Delivery.RetryFirst {
		errs = append(errs, fmt.Errorf("delivery.retry_max: must be at least delivery.retry_first (%s)", c.Delivery.RetryFirst.D()))
	}
	if c.Delivery.GiveUp <= 0 {
		errs = append(errs, errors.New("delivery.give_up: must be positive"))
	}
	if c.Database.MaxOpenConns < 2 {
		errs = append(errs, errors.New("database.max_open_conns: must be at least 2"))
	}
	if c.Database.QueryTimeout <= 0 {
		errs = append(errs, errors.New("database.query_timeout: must be positive"))
	}
	return errors.Join(errs...)
}

func (s SMTP) validate() []error {
	var errs []error
	positive := map[string]int64{
		"smtp.max_message_bytes": s.MaxMessageBytes, "smtp.max_recipients": int64(s.MaxRecipients),
		"smtp.max_header_bytes": int64(s.MaxHeaderBytes), "smtp.max_header_fields": int64(s.MaxHeaderFields),
		"smtp.max_mime_depth": int64(s.MaxMIMEDepth), "smtp.max_line_length": int64(s.MaxLineLength),
		"smtp.max_connections": int64(s.MaxConnections), "smtp.max_connections_per_ip": int64(s.MaxConnectionsPerIP),
		"smtp.command_timeout": int64(s.CommandTimeout), "smtp.data_timeout": int64(s.DataTimeout),
	}
	for _, k := range sortedKeys(positive) {
		if positive[k] <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", k))
		}
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		errs = append(errs, errors.New("smtp.tls_cert and smtp.tls_key: set both or neither"))
	}
	return errs
}

func (c Config) validateIMAP() []error {
	var errs []error
	if c.Database.ReaderURL != "" && c.Database.URL == "" {
		errs = append(errs, errors.New("database.reader_url: needs database.url (the embedded cluster has one role)"))
	}
	if (c.IMAP.TLSCert == "") != (c.IMAP.TLSKey == "") {
		errs = append(errs, errors.New("imap.tls_cert and imap.tls_key: set both or neither"))
	}
	if u := c.IMAP.PublicURL; u != "" && !strings.HasPrefix(u, "imap://") && !strings.HasPrefix(u, "imaps://") {
		errs = append(errs, fmt.Errorf("imap.public_url: %q: must start with imap:// or imaps://", u))
	}
	if (c.NNTP.TLSCert == "") != (c.NNTP.TLSKey == "") {
		errs = append(errs, errors.New("nntp.tls_cert and nntp.tls_key: set both or neither"))
	}
	if c.NNTPS.Listen != "" && c.NNTP.TLSCert == "" {
		errs = append(errs, errors.New("nntps.listen: needs nntp.tls_cert and nntp.tls_key"))
	}
	if c.IMAPS.Listen != "" {
		if err := new(HostPort).UnmarshalText([]byte(c.IMAPS.Listen)); err != nil {
			errs = append(errs, fmt.Errorf("imaps.listen: %w", err))
		}
		if c.IMAP.TLSCert == "" {
			errs = append(errs, errors.New("imaps.listen: needs imap.tls_cert and imap.tls_key"))
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func checkHostname(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("%q is not a host name", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a host name", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a host name", h)
			}
		}
	}
	return nil
}
