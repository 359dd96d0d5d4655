package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/parley-list/parley/internal/config"
	"github.com/parley-list/parley/internal/nntpd"
)

// startNNTP serves every list as a newsgroup on nntp.listen, reading and
// posting.
func startNNTP(g *group, cfg config.Config, d *Database, log *slog.Logger, ready map[string]string) error {
	tlsConf, err := loadTLS(cfg.NNTP.TLSCert, cfg.NNTP.TLSKey, "nntp")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", string(cfg.NNTP.Listen))
	if err != nil {
		return fmt.Errorf("nntp listener: %w", err)
	}
	var tln net.Listener
	if cfg.NNTPS.Listen != "" {
		if tln, err = net.Listen("tcp", cfg.NNTPS.Listen); err != nil {
			ln.Close()
			return fmt.Errorf("nntps listener: %w", err)
		}
		ready["nntps"] = tln.Addr().String()
	}
	// Posts by news take the same intake as SMTP (policy, moderation,
	// archive, delivery).
	intake := NewIngest(cfg, d, log.With("component", "nntp"))
	srv := nntpd.New(nntpd.Options{DB: d.DB, Log: log.With("component", "nntp"), Hostname: cfg.Hostname,
		MaxConns: cfg.NNTP.MaxConnections, MaxConnsPerIP: cfg.NNTP.MaxConnectionsPerIP,
		QueryTimeout: cfg.Database.QueryTimeout.D(), Intake: intake, MaxArticle: cfg.SMTP.MaxMessageBytes, TLS: tlsConf})
	g.add("nntp", func() error { return srv.Serve(ln) }, func(context.Context) error {
		err := srv.Close()
		intake.Close()
		return err
	})
	if tln != nil {
		g.add("nntps", func() error { return srv.ServeTLS(tln) }, func(context.Context) error { tln.Close(); return nil })
	}
	ready["nntp"] = ln.Addr().String()
	return nil
}
