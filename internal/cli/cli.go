// Package cli owns parley's command line: parsing, help, output formats
// and exit statuses. It holds no business logic; commands call internal/app
// and the stores.
//
// Exit status: 0 on success, 1 when something failed at run time (the
// database is unreachable, a file cannot be written), 2 when the request
// itself is wrong (bad flag, malformed address, unknown list, duplicate
// member). Errors are one line on stderr, "parley: …".
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/config"
	"github.com/parley-list/parley/internal/errs"
	"github.com/parley-list/parley/internal/obs"
)

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// IO is the process's environment as the CLI sees it.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Environ        []string
}

// usageError marks a mistake in how a command was invoked.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Main runs the command line args and returns the exit status.
func Main(ctx context.Context, args []string, sio IO) int {
	root := newRoot(sio)
	root.SetArgs(args)
	root.SetIn(sio.Stdin)
	root.SetOut(sio.Stdout)
	root.SetErr(sio.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	msg := oneLine(err.Error())
	if !strings.HasPrefix(msg, "parley ") && !strings.HasPrefix(msg, "parley:") {
		msg = "parley: " + msg
	}
	fmt.Fprintln(sio.Stderr, msg)
	var ue *usageError
	if errors.As(err, &ue) || errs.IsInvalid(err) {
		return ExitUsage
	}
	return ExitFailure
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// env carries what every command needs; built once per invocation.
type env struct {
	io         IO
	configPath string
	// set by withDB for the command it runs
	cfg config.Config
	log *slog.Logger
}

// config loads the configuration from --config (or $PARLEY_CONFIG) and
// the environment. A bad configuration is a usage error.
func (e *env) config() (config.Config, error) {
	path := e.configPath
	if path == "" {
		for _, kv := range e.io.Environ {
			if v, ok := strings.CutPrefix(kv, "PARLEY_CONFIG="); ok {
				path = v
			}
		}
	}
	cfg, err := config.Load(path, e.io.Environ)
	if err != nil {
		return cfg, &usageError{msg: err.Error()}
	}
	return cfg, nil
}

// withDB opens the configured database for a short command, runs fn and
// closes it again (stopping the embedded cluster if this command started
// it).
func (e *env) withDB(ctx context.Context, fn func(d *app.Database) error) error {
	cfg, err := e.config()
	if err != nil {
		return err
	}
	// Commands speak through their output; the log shows only warnings
	// unless debug logging is asked for.
	level := max(cfg.Log.Level.Level(), slog.LevelWarn)
	if cfg.Log.Level.Level() <= slog.LevelDebug {
		level = slog.LevelDebug
	}
	log := obs.NewLogger(e.io.Stderr, string(cfg.Log.Format), level)
	e.cfg, e.log = cfg, log
	d, err := app.OpenDatabase(ctx, cfg, app.RoleCommand, log)
	if err != nil {
		return err
	}
	ferr := fn(d)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
	defer cancel()
	return errors.Join(ferr, d.Close(cctx))
}

func newRoot(sio IO) *cobra.Command {
	e := &env{io: sio}
	root := &cobra.Command{
		Use:           "parley",
		Short:         "parley is a mailing-list server: SMTP in, PostgreSQL archive, read-only IMAP",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          groupArgs,
		RunE:          groupRun,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	root.PersistentFlags().StringVar(&e.configPath, "config", "", "configuration file (TOML); default $PARLEY_CONFIG, else built-in defaults")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%s: %v (see %s --help)", c.CommandPath(), err, c.CommandPath())
	})
	root.AddCommand(
		serveCmd(e), migrateCmd(e), configCmd(e), versionCmd(e),
		listCmd(e), memberCmd(e), subCmd(e), heldCmd(e), bouncesCmd(e), archiveCmd(e), digestCmd(e), banCmd(e), dkimCmd(e),
	)
	return root
}

// groupArgs and groupRun make a command that only groups subcommands
// answer a missing or unknown subcommand with a usage error (exit 2).
func groupArgs(c *cobra.Command, args []string) error { return nil }

func groupRun(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usagef("%s: missing command (see %s --help)", c.CommandPath(), c.CommandPath())
	}
	return usagef("%s: unknown command %q (see %s --help)", c.CommandPath(), args[0], c.CommandPath())
}

func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: groupArgs, RunE: groupRun}
	c.AddCommand(subs...)
	return c
}

// nArgs validates the number of positional arguments as a usage error.
func nArgs(min, max int, names string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < min || max >= 0 && len(args) > max {
			return usagef("%s: want %s (see %s --help)", c.CommandPath(), names, c.CommandPath())
		}
		return nil
	}
}

// stdinOr opens path for reading, where "-" is standard input.
func (e *env) open(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(e.io.Stdin), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return f, nil
}
