// Command parley is the mailing-list server and its administration CLI.
// Everything lives in internal/; this file only connects the process to it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/parley-list/parley/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ()})
	stop()
	os.Exit(code)
}
