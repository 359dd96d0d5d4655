package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-list/parley/internal/config"
	"github.com/parley-list/parley/internal/ingest"
	"github.com/parley-list/parley/internal/mailmsg"
	"github.com/parley-list/parley/internal/moderation"
	"github.com/parley-list/parley/internal/smtpin"
)

// startSMTP starts the SMTP listener and, when configured, the LMTP one,
// recording their bound addresses in ready.
func startSMTP(g *group, cfg config.Config, d *Database, log *slog.Logger, reg prometheus.Registerer, ready map[string]string) error {
	svc := NewIngest(cfg, d, log)
	outcomes := ingest.NewOutcomes()
	reg.MustRegister(outcomes)
	svc.CountOutcomes(outcomes)
	tlsConfig, err := loadTLS(cfg.SMTP.TLSCert, cfg.SMTP.TLSKey, "smtp")
	if err != nil {
		return err
	}
	opts := smtpin.Options{
		Intake: svc, Logger: log, Hostname: cfg.Hostname,
		MaxMessageBytes: cfg.SMTP.MaxMessageBytes, MaxRecipients: cfg.SMTP.MaxRecipients,
		MaxLineLength: cfg.SMTP.MaxLineLength, MaxConns: cfg.SMTP.MaxConnections,
		MaxConnsPerIP: cfg.SMTP.MaxConnectionsPerIP, CommandTimeout: cfg.SMTP.CommandTimeout.D(),
		DataTimeout: cfg.SMTP.DataTimeout.D(), TLS: tlsConfig,
	}
	ln, err := net.Listen("tcp", string(cfg.SMTP.Listen))
	if err != nil {
		return fmt.Errorf("smtp listener: %w", err)
	}
	srv := smtpin.New(opts)
	// Stopping intake: first the listener and its sessions, then the
	// writers they hand posts to.
	g.add("ingest", func() error { return nil }, func(context.Context) error { svc.Close(); return nil })
	g.add("smtp", func() error { return srv.Serve(ln) }, srv.Shutdown)
	ready["smtp"] = ln.Addr().String()
	if cfg.LMTP.Listen == "" {
		return nil
	}
	network, addr := "tcp", cfg.LMTP.Listen
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
		_ = os.Remove(path) // a socket left by a previous run
	}
	lln, err := net.Listen(network, addr)
	if err != nil {
		return fmt.Errorf("lmtp listener: %w", err)
	}
	opts.LMTP = true
	lsrv := smtpin.New(opts)
	g.add("lmtp", func() error { return lsrv.Serve(lln) }, lsrv.Shutdown)
	ready["lmtp"] = lln.Addr().String()
	return nil
}

// NewIngest returns the intake service, as SMTP and the CLI (imports)
// use it.
func NewIngest(cfg config.Config, d *Database, log *slog.Logger) *ingest.Service {
	return ingest.New(ingest.Options{
		DB: d.DB, Logger: log, Hostname: cfg.Hostname, Notify: d.Notify, Moderation: NewModeration(cfg, d, log),
		Authors:         &ingest.AuthorCheck{LookupTXT: resolver(cfg).LookupTXT, TrustedAuthServ: splitList(cfg.SMTP.TrustedAuthServIDs)},
		MaxMessageBytes: cfg.SMTP.MaxMessageBytes,
		QueryTimeout:    cfg.Database.QueryTimeout.D(),
		Limits: mailmsg.Limits{
			MaxHeaderBytes: cfg.SMTP.MaxHeaderBytes, MaxHeaderFields: cfg.SMTP.MaxHeaderFields,
			MaxMIMEDepth: cfg.SMTP.MaxMIMEDepth,
		},
	})
}

// loadTLS returns the TLS configuration of a listener section (smtp,
// imap), or nil when it has no certificate: TLS 1.2 or newer only.
func loadTLS(certFile, keyFile, section string) (*tls.Config, error) {
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s.tls_cert/tls_key: %w", section, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		CipherSuites: modernTLS12Suites()}, nil
}

// modernTLS12Suites are the TLS 1.2 cipher suites parley's listeners
// accept: forward-secret key exchange with an AEAD cipher only (Mozilla's
// "intermediate" profile without finite-field DHE); Go's own default also
// allows CBC with SHA-1 MACs. TLS 1.3 suites are not configurable, and all
// are modern.
func modernTLS12Suites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// NewModeration returns the service that holds posts and carries out the
// moderators' decisions, as intake, command mail and the CLI use it.
func NewModeration(cfg config.Config, d *Database, log *slog.Logger) *moderation.Service {
	return moderation.NewService(moderation.Options{DB: d.DB, Logger: log, Hostname: cfg.Hostname, Notify: d.Notify})
}

// splitList reads a comma-separated setting.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
