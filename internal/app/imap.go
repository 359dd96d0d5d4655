package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/parley-list/parley/internal/config"
	"github.com/parley-list/parley/internal/imapd"
)

// startIMAP serves the read-only archive on imap.listen.
func startIMAP(g *group, cfg config.Config, d *Database, log *slog.Logger, ready map[string]string) error {
	ln, err := net.Listen("tcp", string(cfg.IMAP.Listen))
	if err != nil {
		return fmt.Errorf("imap listener: %w", err)
	}
	srv := imapd.New(imapd.Options{DB: d.DB, DSN: d.DSN, Log: log.With("component", "imap"),
		QueryTimeout: time.Duration(cfg.Database.QueryTimeout)})
	g.add("imap", func() error { return srv.Serve(ln) },
		func(context.Context) error { return srv.Close() })
	ready["imap"] = ln.Addr().String()
	return nil
}
