package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-list/parley/internal/bounce"
	"github.com/parley-list/parley/internal/commands"
	"github.com/parley-list/parley/internal/config"
	"github.com/parley-list/parley/internal/deliver"
	"github.com/parley-list/parley/internal/digest"
	"github.com/parley-list/parley/internal/notify"
	"github.com/parley-list/parley/internal/outqueue"
)

// newRelay builds the configured relay.
func newRelay(cfg config.Config) (deliver.Relay, error) {
	kind, target, err := cfg.Relay.Parse()
	if err != nil {
		return nil, err
	}
	switch kind {
	case config.RelayFile:
		if err := os.MkdirAll(target, 0o700); err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		return &deliver.FileRelay{Dir: target}, nil
	case config.RelaySMTP:
		user, pass := cfg.Relay.Credentials()
		return &deliver.SMTPRelay{Addr: target, Hostname: cfg.Hostname, Timeout: cfg.Delivery.Timeout.D(),
			TLS:      &tls.Config{ServerName: hostOnly(target), MinVersion: tls.VersionTLS12},
			Username: user, Password: pass, Conns: cfg.Delivery.Workers}, nil
	case config.RelayMX:
		return &deliver.MXRelay{Resolver: resolver(cfg), Hostname: cfg.Hostname, Port: cfg.Delivery.MXPort, Timeout: cfg.Delivery.Timeout.D()}, nil
	}
	return nil, errors.New("relay: unknown kind")
}

// resolver is the DNS resolver of dns.resolver: the system's when it is
// empty, else one that asks that server only.
func resolver(cfg config.Config) *net.Resolver {
	if cfg.DNS.Resolver == "" {
		return net.DefaultResolver
	}
	server := cfg.DNS.Resolver
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

func hostOnly(hostport string) string {
	for i := len(hostport) - 1; i >= 0; i-- {
		if hostport[i] == ':' {
			return hostport[:i]
		}
	}
	return hostport
}

// startDelivery runs the delivery workers until the group stops them.
// bounces scores the permanent refusals the relay gives.
func startDelivery(g *group, cfg config.Config, d *Database, log *slog.Logger, reg prometheus.Registerer,
	tokens deliver.Tokens, archiveURL string, bounces deliver.BounceRecorder) error {
	if cfg.Delivery.Workers == 0 {
		log.Info("no delivery workers in this process", "event", "delivery_off")
		return nil
	}
	relay, err := newRelay(cfg)
	if err != nil {
		return err
	}
	results := deliver.NewResults()
	reg.MustRegister(results)
	svc := deliver.New(deliver.Options{
		DB: d.DB, DSN: d.DSN, Relay: relay, Logger: log, Results: results, Bounces: bounces,
		Site: deliver.Site{ArchiveURL: archiveURL, BaseURL: cfg.HTTP.BaseURL}, Unsub: tokens,
		// Lists on the default "policy" mitigation rewrite From: for
		// authors whose domain publishes a strict DMARC policy.
		DMARC:   &deliver.DMARC{LookupTXT: resolver(cfg).LookupTXT, Logger: log},
		Workers: cfg.Delivery.Workers, PerDomain: cfg.Delivery.PerDomain, Lease: cfg.Delivery.Lease.D(),
		Backoff: outqueue.Backoff{First: cfg.Delivery.RetryFirst.D(), Max: cfg.Delivery.RetryMax.D(),
			GiveUp: cfg.Delivery.GiveUp.D(), Jitter: 0.1},
	})
	ctx, cancel := context.WithCancel(context.Background())
	g.add("delivery", func() error { return svc.Run(ctx) }, func(context.Context) error {
		cancel()
		return relay.Close()
	})
	return nil
}

// startProcessors runs the processors of stored service-address mail
// (command mail and bounces) and the digest scheduler. They run in every
// process, whether or not it delivers: what they queue wakes the delivery
// workers of any process through NOTIFY outbound. It returns the bounce processor, which also
// scores the refusals delivery meets.
func startProcessors(g *group, cfg config.Config, d *Database, log *slog.Logger, reg prometheus.Registerer, archiveURL string) *bounce.Processor {
	wake := func() { d.Notify.Poke(notify.Outbound, "") }
	bounceCounts, commandCounts := bounce.NewCounts(), commands.NewCounts()
	reg.MustRegister(bounceCounts, commandCounts)
	bounces := &bounce.Processor{DB: d.DB, Log: log, Scoring: bounce.DefaultScoring, Hostname: cfg.Hostname,
		Counts: bounceCounts, Poke: wake}
	bctx, bcancel := context.WithCancel(context.Background())
	g.add("bounces", func() error { return bounces.Run(bctx, 5*time.Second) }, func(context.Context) error {
		bcancel()
		return nil
	})
	digests := &digest.Scheduler{DB: d.DB, Log: log, MaxMessage: cfg.SMTP.MaxMessageBytes,
		Every: cfg.Digest.CheckEvery.D(), Queued: wake}
	dctx, dcancel := context.WithCancel(context.Background())
	g.add("digests", func() error { return digests.Run(dctx) }, func(context.Context) error {
		dcancel()
		return nil
	})
	cmds := &commands.Processor{DB: d.DB, Log: log, Hostname: cfg.Hostname, Poke: wake,
		Moderator: NewModeration(cfg, d, log), Counts: commandCounts, Archive: commands.Access{IMAPURL: archiveURL, WebURL: cfg.HTTP.BaseURL}}
	cctx, ccancel := context.WithCancel(context.Background())
	g.add("commands", func() error { return cmds.Run(cctx, time.Second) }, func(context.Context) error {
		ccancel()
		return nil
	})
	return bounces
}
