package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "the nightly job: ingest new CDR files, rate, tax, build invoice lines, export and reconcile a period",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "period", Usage: "billing period `YYYY-MM` (default: the one containing yesterday in the billing time zone)"},
			waitFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, period, err := configAndPeriod(cmd)
			if err != nil {
				return err
			}
			return runNightly(ctx, cmd, cfg, period)
		},
	}
}

// runNightly runs the nightly job: ingest, then build and publish the period. Files it ingested
// that carry usage of other periods already published (or closed) rebuild those periods too, so
// late usage is never left unbilled silently: each gets a new version with its delta (or, when
// closed, a review item). The exit status is the worst of them.
func runNightly(ctx context.Context, cmd *cli.Command, cfg *pipeline.Config, period pipeline.Period) error {
	var runID string
	remember := func(_ context.Context, r *pipeline.Run) error { runID = r.ID; return nil }
	err := runJob(ctx, cmd, cfg, period, "run", pipeline.NightlyStages(cfg), remember)
	if runID == "" || (err != nil && exitCode(err) != ExitReview) {
		return err
	}
	others, touchErr := pipeline.TouchedPeriods(cfg, runID, period)
	if touchErr != nil {
		return touchErr
	}
	for _, p := range others {
		if cfg.Closed(p.Month) {
			fmt.Fprintf(cmd.Root().Writer, "late usage for %s, a closed period: not rewritten, listed for review\n", p.Month)
		} else {
			fmt.Fprintf(cmd.Root().Writer, "late usage for %s: rebuilding it\n", p.Month)
		}
		otherErr := runJob(ctx, cmd, cfg, p, "run", pipeline.PeriodStages(cfg), nil)
		if otherErr != nil && (err == nil || exitCode(otherErr) != ExitReview) {
			err = otherErr
		}
	}
	return err
}

// runJob runs stages for one period under the data folder's lock, prints what was published and
// what needs review, and records the run in output/runs.csv. report, if set, prints the
// command's own summary from the finished run's tables.
func runJob(ctx context.Context, cmd *cli.Command, cfg *pipeline.Config, period pipeline.Period, name string,
	stages []pipeline.Stage, report func(context.Context, *pipeline.Run) error) error {
	unlock, err := pipeline.Lock(ctx, cfg, cmd.Bool("wait"))
	if err != nil {
		return err
	}
	defer unlock()
	log := newLogger(cmd.Root().ErrWriter)
	pipeline.CdrbillVersion = Version
	if _, err := pipeline.ApplyLimits(cfg); err != nil {
		return err
	}
	r, err := pipeline.NewRun(ctx, cfg, period, log)
	if err != nil {
		return err
	}
	defer r.Close()
	if isTerminal(cmd.Root().Writer) {
		r.Progress = cmd.Root().Writer
	}
	log.Info("run started", "run", r.ID, "command", name, "period", period.Month, "config", cfg.File)
	err = pipeline.Execute(ctx, r, stages)
	if err == nil && report != nil {
		err = report(ctx, r)
	}
	status := exitCode(err)
	if err == nil {
		err = reviewResult(r.Review)
		status = exitCode(err)
	}
	if logErr := pipeline.AppendRunLog(cfg, r, name, status); logErr != nil && err == nil {
		err = logErr
	}
	publishes := len(stages) > 0 && stages[len(stages)-1].String() == "publish"
	switch {
	case r.Published != "":
		fmt.Fprintf(cmd.Root().Writer, "published %s\n", r.Published)
	case publishes && (err == nil || status == ExitReview):
		fmt.Fprintf(cmd.Root().Writer, "%s unchanged: nothing new to publish\n", period.Month)
	}
	for _, it := range r.Review {
		fmt.Fprintf(cmd.Root().Writer, "review: %s: %d\n", it.Kind, it.Count)
	}
	if line, cadenceErr := reconcileCadenceLine(cfg, time.Now()); cadenceErr == nil && line != "" {
		fmt.Fprintln(cmd.Root().Writer, line)
	}
	return err
}

// reconcileCadenceLine reports when the next reconciliation against posted invoices is due:
// weekly for the first 90 days after monitoring.cutover, then monthly.
func reconcileCadenceLine(cfg *pipeline.Config, now time.Time) (string, error) {
	last, err := pipeline.LastRunStart(cfg, "reconcile")
	if err != nil {
		return "", err
	}
	day := now.In(cfg.Location)
	due, next, cadence, err := pipeline.ReconcileDue(cfg.Monitor.Cutover, last, day)
	if err != nil || cadence == pipeline.CadenceNone {
		return "", err
	}
	lastText := "never"
	if !last.IsZero() {
		lastText = last.In(cfg.Location).Format(time.DateOnly)
	}
	if due {
		return fmt.Sprintf("reconcile: %s cadence, last %s: due now (cdrbill reconcile --period %s)",
			cadence, lastText, pipeline.PeriodOf(time.Date(day.Year(), day.Month(), 0, 0, 0, 0, 0, time.UTC)).Month), nil
	}
	return fmt.Sprintf("reconcile: %s cadence, last %s, next due %s", cadence, lastText, next.Format(time.DateOnly)), nil
}

// configAndPeriod reads --period (a bad one is a usage error, reported before the config is
// read), then the config; without --period the period is the one containing yesterday in the
// billing zone.
func configAndPeriod(cmd *cli.Command) (*pipeline.Config, pipeline.Period, error) {
	period, err := periodFlag(cmd)
	if err != nil {
		return nil, period, err
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, period, err
	}
	if period.Month == "" {
		period = pipeline.DefaultPeriod(time.Now(), cfg.Location)
	}
	return cfg, period, nil
}

// periodFlag reads --period; the zero Period means "not given".
func periodFlag(cmd *cli.Command) (pipeline.Period, error) {
	p := cmd.String("period")
	if p == "" {
		return pipeline.Period{}, nil
	}
	period, err := pipeline.ParsePeriod(p)
	if err != nil {
		return period, usageError{err}
	}
	return period, nil
}

// waitFlag makes a command wait for the data folder's lock instead of exiting with status 4.
var waitFlag = &cli.BoolFlag{Name: "wait", Usage: "wait for another run to finish instead of exiting with status 4"}
