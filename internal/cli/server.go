package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/parley-list/parley/internal/app"
	"github.com/parley-list/parley/internal/config"
	"github.com/parley-list/parley/internal/db"
	"github.com/parley-list/parley/internal/obs"
)

func serveCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the server until SIGINT or SIGTERM",
		Long: `Run the server. With no database URL configured, parley starts (or on the
first run creates) a private PostgreSQL cluster under the data directory and
stops it on exit. When every listener is bound, one JSON line with
"event":"ready" and the bound addresses is written to standard output; logs
go to standard error.`,
		Args: nArgs(0, 0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := e.config()
			if err != nil {
				return err
			}
			log := obs.NewLogger(e.io.Stderr, string(cfg.Log.Format), cfg.Log.Level.Level())
			return app.Serve(c.Context(), cfg, e.io.Stdout, log)
		},
	}
}

func migrateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations and print the schema version",
		Long: `Apply pending database migrations. parley serve and every command also
migrate at start-up (under an advisory lock, so concurrent starts are safe);
this command does only that, for deployments that migrate as a separate step.`,
		Args: nArgs(0, 0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return e.withDB(c.Context(), func(d *app.Database) error {
				cur, latest, err := db.SchemaVersion(c.Context(), d.DB.DB)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.io.Stdout, "schema at version %d of %d\n", cur, latest)
				return nil
			})
		},
	}
}

func configCmd(e *env) *cobra.Command {
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective settings",
		Long: `Load the configuration file (--config or $PARLEY_CONFIG) and the PARLEY_*
environment, report every problem (exit status 2), or print the effective
configuration as TOML with secrets hidden.`,
		Args: nArgs(0, 0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := e.config()
			if err != nil {
				return err
			}
			return config.WriteEffective(e.io.Stdout, cfg)
		},
	}
	example := &cobra.Command{
		Use:   "example",
		Short: "Print a documented example configuration with every key and its default",
		Args:  nArgs(0, 0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return config.WriteExample(e.io.Stdout)
		},
	}
	return group("config", "Check or print the configuration", check, example)
}

func versionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print parley's version",
		Args:  nArgs(0, 0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(e.io.Stdout, "parley %s\n", app.Version)
			return err
		},
	}
}
