package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/parley-list/parley/internal/commands"
	"github.com/parley-list/parley/internal/config"
	"github.com/parley-list/parley/internal/httpd"
	"github.com/parley-list/parley/internal/inbound"
	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/obs"
	"github.com/parley-list/parley/internal/outqueue"
	"github.com/parley-list/parley/internal/unsub"
	"github.com/parley-list/parley/internal/web"
)

// shutdownBudget bounds the graceful part of shutdown; the embedded
// cluster's stop comes after it, and the whole must fit in 10 s.
const shutdownBudget = 5 * time.Second

// Serve runs parley until ctx is cancelled (SIGINT/SIGTERM), then stops
// accepting, finishes in-flight work and stops the database. When every
// listener is bound it writes exactly one JSON line to stdout, the
// readiness line that tests and supervisors wait for.
func Serve(ctx context.Context, cfg config.Config, stdout io.Writer, log *slog.Logger) (err error) {
	start := time.Now()
	tuneGC()
	if err := prepareDataDir(cfg); err != nil {
		return err
	}
	d, err := OpenDatabase(ctx, cfg, RoleServe, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, d.Close(cctx))
	}()
	if err := ensureDemoList(ctx, d, cfg, log); err != nil {
		return err
	}

	reg := obs.NewRegistry(Version)
	reg.MustRegister(collectors.NewDBStatsCollector(d.DB.DB, "parley"),
		outqueue.NewCollector(d.DB, 5*time.Second), inbound.NewCollector(d.DB, 5*time.Second))
	var g group
	defer g.stop(ctx, log)
	ready := map[string]string{"event": "ready"}
	signer, err := unsub.LoadSigner(ctx, d)
	if err != nil {
		return fmt.Errorf("unsubscribe key: %w", err)
	}
	// IMAP first: its address is the base of the archive URLs that
	// delivery writes into every copy.
	if err := startIMAP(&g, cfg, d, log, reg, ready); err != nil {
		return err
	}
	if err := startNNTP(&g, cfg, d, log, ready); err != nil {
		return err
	}
	startBackfill(&g, d, log)
	archive := archiveURL(cfg, ready["imap"])
	bounces := startProcessors(&g, cfg, d, log, reg, archive)
	if err := startDelivery(&g, cfg, d, log, reg, signer, archive, bounces); err != nil {
		return err
	}
	if err := startSMTP(&g, cfg, d, log, reg, ready); err != nil {
		return err
	}
	httpLn, err := net.Listen("tcp", string(cfg.HTTP.Listen))
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	webKey, err := unsub.Secret(ctx, d, "web")
	if err != nil {
		return fmt.Errorf("web session key: %w", err)
	}
	archiveWeb, err := web.New(web.Options{DB: d.DB, Log: log.With("component", "web"), BaseURL: cfg.HTTP.BaseURL,
		QueryTimeout: cfg.Database.QueryTimeout.D(), Secret: webKey, Templates: cfg.HTTP.Templates,
		SecureCookies: cfg.HTTP.TLSCert != "" || strings.HasPrefix(cfg.HTTP.BaseURL, "https://")})
	if err != nil {
		return err
	}
	srv := httpd.NewServer(httpd.Handler(httpd.Options{DB: d, Registry: reg, Logger: log,
		Unsubscribe: &unsub.Handler{DB: d.DB, Signer: signer, Log: log,
			Greeter: commands.Greeter{Hostname: cfg.Hostname, Archive: commands.Access{IMAPURL: archive, WebURL: cfg.HTTP.BaseURL}}},
		Archive: archiveWeb}), log)
	httpTLS, err := loadTLS(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey, "http")
	if err != nil {
		return err
	}
	if httpTLS != nil {
		srv.TLSConfig = httpTLS
		httpLn = tls.NewListener(httpLn, httpTLS)
	}
	g.add("http", func() error {
		if err := srv.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, srv.Shutdown)
	ready["http"] = httpLn.Addr().String()

	if err := json.NewEncoder(stdout).Encode(ready); err != nil {
		return err
	}
	log.Info("parley ready", "event", "ready", "listeners", ready,
		"version", Version, "startup", time.Since(start).Round(time.Millisecond))

	select {
	case <-ctx.Done():
		log.Info("shutting down", "event", "shutdown")
		return nil
	case err := <-g.failed:
		return err
	case <-d.ClusterExited():
		// Without its database parley can only refuse mail; exit so the
		// supervisor restarts the whole process, cluster included.
		log.Error("embedded PostgreSQL exited; stopping", "event", "pg_died")
		return errors.New("embedded PostgreSQL exited unexpectedly")
	}
}

// tuneGC trades memory the server has for collector time it lacks, unless
// the operator set GOGC or GOMEMLIMIT. A FETCH of message bodies turns
// over megabytes a second; with the default GOGC=100 the heap stays so
// small that the collector, and the runtime handing pages back to the
// system and faulting them in again, took a third of the CPU. GOGC=400
// with a soft limit of 1 GiB keeps the heap in the tens of megabytes at
// rest and lets it breathe under load.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}

// prepareDataDir creates the data directory and the file relay's outbox.
func prepareDataDir(cfg config.Config) error {
	if err := os.MkdirAll(cfg.DataDir, 0o711); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	if kind, dir, _ := cfg.Relay.Parse(); kind == config.RelayFile {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("relay outbox: %w", err)
		}
	}
	return nil
}

// ensureDemoList creates the configured demo list when there is no list
// at all, so a newcomer can post right away.
func ensureDemoList(ctx context.Context, d *Database, cfg config.Config, log *slog.Logger) error {
	if cfg.DemoList == "" {
		return nil
	}
	n, err := lists.Count(ctx, d)
	if err != nil || n > 0 {
		return err
	}
	addr, err := mailaddr.ParseList(cfg.DemoList)
	if err != nil {
		return err
	}
	open := lists.PostOpen
	name, desc := "Demo list", "A list parley made on first start so there is something to post to. Delete it with: parley list delete "+addr.String()+" --yes"
	prefix := "[" + addr.Local + "]"
	_, err = lists.Create(ctx, d, addr, lists.Settings{
		DisplayName: &name, Description: &desc, PostPolicy: &open, SubjectPrefix: &prefix,
	}, time.Now())
	if errors.Is(err, lists.ErrExists) {
		return nil // another parley process made it first
	}
	if err != nil {
		return fmt.Errorf("demo list: %w", err)
	}
	log.Info("created demo list", "event", "demo_list", "list", addr.String())
	return nil
}
