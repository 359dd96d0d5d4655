package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-list/parley/internal/commands"
	"github.com/parley-list/parley/internal/config"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/imapd"
)

// archiveURL is the base of List-Archive and Archived-At: imap.public_url,
// or imap://hostname with the listener's port unless it is IMAP's own.
func archiveURL(cfg config.Config, listening string) string {
	if cfg.IMAP.PublicURL != "" {
		return cfg.IMAP.PublicURL
	}
	host := cfg.Hostname
	if _, port, err := net.SplitHostPort(listening); err == nil && port != "143" {
		host = net.JoinHostPort(host, port)
	}
	return "imap://" + host
}

// imapDatabase is the pool IMAP reads through: always its own, and with
// the read-only role when database.reader_url is set.
func imapDatabase(cfg config.Config, d *Database) (*sqlx.DB, string, error) {
	dsn := cfg.Database.ReaderURL
	if dsn == "" {
		dsn = d.DSN
	}
	// A pool of its own, half the size of the main one: however busy the
	// readers are (a search through everything, many full fetches), they
	// cannot take the connections intake and delivery need.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: max(2, cfg.Database.MaxOpenConns/2)})
	if err != nil && cfg.Database.ReaderURL != "" {
		return nil, "", fmt.Errorf("database.reader_url: %w", err)
	}
	return pool, dsn, err
}

// startIMAP serves the read-only archive on imap.listen (with STARTTLS
// when imap.tls_cert is set) and on imaps.listen (implicit TLS).
func startIMAP(g *group, cfg config.Config, d *Database, log *slog.Logger, reg prometheus.Registerer, ready map[string]string) error {
	tlsConf, err := loadTLS(cfg.IMAP.TLSCert, cfg.IMAP.TLSKey, "imap")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", string(cfg.IMAP.Listen))
	if err != nil {
		return fmt.Errorf("imap listener: %w", err)
	}
	if tlsConf == nil && !isLoopback(ln.Addr()) {
		log.Warn("IMAP listens beyond this machine without TLS: members' archive passwords would cross the network in clear; set imap.tls_cert (anonymous reading needs no password)",
			"event", "imap_no_tls", "listen", ln.Addr().String())
	}
	var lns []net.Listener
	if cfg.IMAPS.Listen != "" {
		tln, err := net.Listen("tcp", cfg.IMAPS.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("imaps listener: %w", err)
		}
		lns = append(lns, tln)
		ready["imaps"] = tln.Addr().String()
	}
	pool, dsn, err := imapDatabase(cfg, d)
	if err != nil {
		ln.Close()
		return err
	}
	metrics := imapd.NewMetrics()
	reg.MustRegister(metrics.Collectors()...)
	srv := imapd.New(imapd.Options{DB: pool, DSN: dsn, Log: log.With("component", "imap"), TLS: tlsConf,
		QueryTimeout: time.Duration(cfg.Database.QueryTimeout), Metrics: metrics,
		MaxConns: cfg.IMAP.MaxConnections, MaxConnsPerIP: cfg.IMAP.MaxConnectionsPerIP})
	g.add("imap", func() error { return srv.Serve(ln) },
		func(context.Context) error {
			err := srv.Close()
			if pool != d.DB {
				pool.Close()
			}
			return err
		})
	for _, tln := range lns {
		g.add("imaps", func() error { return srv.ServeTLS(tln) },
			func(context.Context) error { tln.Close(); return nil }) // srv.Close closes it too

	}
	ready["imap"] = ln.Addr().String()
	return nil
}

func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

// ArchiveURL is the archive's URL as the configuration gives it, for
// commands that run beside the server (links in a digest shown by the
// CLI): what a running server would use when its IMAP listener has the
// configured address.
func ArchiveURL(cfg config.Config) string { return archiveURL(cfg, string(cfg.IMAP.Listen)) }

// NewGreeter returns what sends the welcome, goodbye and request answers
// from commands that run beside the server (the CLI).
func NewGreeter(cfg config.Config) commands.Greeter {
	return commands.Greeter{Hostname: cfg.Hostname, Archive: commands.Access{IMAPURL: ArchiveURL(cfg), WebURL: cfg.HTTP.BaseURL}}
}
