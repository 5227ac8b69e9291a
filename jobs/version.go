package jobs

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

// Version and Commit are set at build time (-ldflags "-X cdrbill/jobs.Version=...").
var (
	Version = "dev"
	Commit  = "unknown"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, commit and DuckDB version",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			duck, err := pipeline.DuckDBVersion(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.Root().Writer, "cdrbill %s (commit %s, DuckDB %s)\n", Version, Commit, duck)
			return nil
		},
	}
}
