package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

func traceCommand() *cli.Command {
	return &cli.Command{
		Name:  "trace",
		Usage: "explain the rating of one call step by step: plan, prefix, time band, tiers, fee, minimum/maximum, rounding, amount",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "account", Usage: "the account `A` the CDR carries", Required: true},
			&cli.StringFlag{Name: "destination", Usage: "dialled number `NUM` (normalised to E.164 as ingest does)"},
			&cli.StringFlag{Name: "start", Usage: "call start `TIME`: ISO 8601 with an offset or Z; without one it is in the billing time zone", Required: true},
			&cli.Int64Flag{Name: "duration", Usage: "billable `SECONDS`"},
			&cli.StringFlag{Name: "direction", Value: "outbound", Usage: "outbound or inbound"},
			&cli.Int64Flag{Name: "bytes", Usage: "a data record of `N` bytes (rated on bytes)"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "text or json"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return traceAction(ctx, cmd, cfg)
		},
	}
}

// traceAction rates the call of the flags on a scratch run of cfg and prints the explanation.
// An unrated call or unmapped account exits 3.
func traceAction(ctx context.Context, cmd *cli.Command, cfg *pipeline.Config) error {
	format := cmd.String("format")
	if format != "text" && format != "json" {
		return usageError{fmt.Errorf("--format %q: want text or json", format)}
	}
	start, err := parseTraceStart(cmd.String("start"), cfg.Location)
	if err != nil {
		return usageError{err}
	}
	req := pipeline.TraceRequest{
		Account: cmd.String("account"), Destination: cmd.String("destination"), Start: start,
		Duration: cmd.Int64("duration"), Direction: cmd.String("direction"), Bytes: cmd.Int64("bytes"),
	}
	// A scratch run: the reference data in effect, no staged CDRs, nothing written.
	r, err := pipeline.NewRun(ctx, cfg, pipeline.PeriodOf(start.In(cfg.Location)), newLogger(cmd.Root().ErrWriter))
	if err != nil {
		return err
	}
	defer r.Close()
	res, err := pipeline.Trace(ctx, r, req)
	if err != nil {
		return err
	}
	out := cmd.Root().Writer
	if format == "json" {
		err = res.WriteJSON(out)
	} else {
		err = res.WriteText(out)
	}
	if err != nil {
		return err
	}
	if res.Error != nil {
		return reviewResult([]pipeline.ReviewItem{{Kind: res.Error.Kind, Count: 1}})
	}
	return nil
}

// parseTraceStart reads ISO 8601 with an offset or Z, or a local time in the billing zone.
func parseTraceStart(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--start %q: want ISO 8601 such as 2025-10-08T11:00:00-04:00", s)
}
