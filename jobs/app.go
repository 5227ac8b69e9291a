// Package jobs is cdrbill's command line: one file per command, config loading, and the one place
// that turns errors into messages and exit codes.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

// Exit statuses (CONTRACT.md).
const (
	ExitOK     = 0 // success, nothing needs review
	ExitFailed = 1 // the job failed and published nothing new
	ExitInput  = 2 // bad usage, config or reference data; nothing ran
	ExitReview = 3 // published, but items need review
	ExitLocked = 4 // another run holds the data folder; nothing was done
)

// usageError is bad command-line usage: exit 2.
type usageError struct{ error }

// reviewError reports a successful run whose items need review: exit 3.
type reviewError struct{ items []pipeline.ReviewItem }

func (e reviewError) Error() string {
	s := "needs review:"
	for _, it := range e.items {
		s += fmt.Sprintf(" %s=%d", it.Kind, it.Count)
	}
	return s
}

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := &cli.Command{
		Name:            "cdrbill",
		Usage:           "rate, tax, export and reconcile telecom usage for ConnectWise PSA",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Flags: []cli.Flag{&cli.StringFlag{
			Name: "config", Value: "cdrbill.toml", Usage: "config `FILE`",
			Sources: cli.EnvVars("CDRBILL_CONFIG"),
		}},
		OnUsageError: func(ctx context.Context, cmd *cli.Command, err error, isSubcommand bool) error {
			return usageError{err}
		},
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		Commands:       commands(),
	}
	err := app.Run(ctx, args)
	code := exitCode(err)
	if err != nil {
		var rev reviewError
		if errors.As(err, &rev) {
			fmt.Fprintf(stderr, "cdrbill: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "cdrbill: error: %v\n", err)
		}
	}
	return code
}

func exitCode(err error) int {
	var rev reviewError
	var use usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &rev):
		return ExitReview
	case errors.As(err, &use), pipeline.IsInputError(err):
		return ExitInput
	case errors.Is(err, pipeline.ErrLocked):
		return ExitLocked
	}
	return ExitFailed
}

// reviewResult turns a finished run's review items into the error that makes exit status 3.
func reviewResult(items []pipeline.ReviewItem) error {
	if len(items) == 0 {
		return nil
	}
	return reviewError{items}
}
