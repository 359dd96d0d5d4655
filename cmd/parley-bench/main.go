// Command parley-bench runs parley's benchmarks (make bench) against the
// real binary and prints "BENCH <name> <value> <unit>" lines.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/parley-list/parley/internal/bench"
)

func main() {
	o := bench.Options{Out: os.Stdout, Log: os.Stderr, Only: map[string]bool{}}
	only := flag.String("only", "", "comma-separated benchmarks to run: ingest,latency,import,fanout,digest,imap,web (default all), or load (make load)")
	flag.StringVar(&o.Parley, "parley", "bin/parley", "the parley binary")
	flag.StringVar(&o.WorkDir, "work", "", "scratch directory (default: a new temporary one)")
	flag.IntVar(&o.IngestClients, "clients", 8, "concurrent SMTP clients for ingest_rate")
	flag.IntVar(&o.IngestLists, "lists", 1, "spread ingest_rate's clients over this many lists")
	flag.DurationVar(&o.IngestDuration, "duration", 10*time.Second, "how long ingest_rate sends")
	flag.IntVar(&o.LatencyPosts, "latency-posts", 300, "posts timed for ack_latency")
	flag.DurationVar(&o.ThroughputDuration, "throughput-duration", 60*time.Second, "how long outbound_throughput offers posts")
	flag.IntVar(&o.ImportCount, "import-count", 20000, "messages in the generated mbox for import_rate")
	flag.IntVar(&o.IMAPCount, "imap-count", 100000, "messages in the generated archive the imap figures read")
	flag.IntVar(&o.LoadSMTP, "load-smtp", 200, "concurrent SMTP sessions of the load test")
	flag.IntVar(&o.LoadIMAP, "load-imap", 100, "concurrent IMAP sessions of the load test (half in IDLE)")
	flag.DurationVar(&o.LoadDuration, "load-duration", 60*time.Second, "how long the load test runs")
	flag.Parse()
	for _, name := range strings.Split(*only, ",") {
		if name != "" {
			o.Only[name] = true
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "parley-bench:", err)
		os.Exit(1)
	}
}
