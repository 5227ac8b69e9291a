package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

func scheduleCommand() *cli.Command {
	return &cli.Command{
		Name:  "schedule",
		Usage: "stay in the foreground and run the nightly job on the config's cron expression",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "catch-up", Value: true, Usage: "at start, run once if a scheduled run was missed since the last one in runs.csv"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			sched, err := cron.ParseStandard(cfg.Schedule.Cron)
			if err != nil {
				return &pipeline.InputError{File: cfg.File, Err: fmt.Errorf("schedule.cron %q: %w", cfg.Schedule.Cron, err)}
			}
			return schedule(ctx, cmd, cfg, sched, cmd.Bool("catch-up"))
		},
	}
}

// schedule runs the job at each tick of sched, in the billing time zone, until ctx ends (SIGINT
// or SIGTERM: a run in progress is abandoned; its work folder is discarded and nothing
// half-written is published). A tick that finds another run holding the lock is skipped.
func schedule(ctx context.Context, cmd *cli.Command, cfg *pipeline.Config, sched cron.Schedule, catchUp bool) error {
	log := newLogger(cmd.Root().ErrWriter)
	tick := func() {
		period := pipeline.DefaultPeriod(time.Now(), cfg.Location)
		err := runNightly(ctx, cmd, cfg, period)
		log.Info("scheduled run finished", "period", period.Month, "exit_status", exitCode(err), "error", errString(err))
	}
	if catchUp {
		last, err := pipeline.LastRunStart(cfg, "run")
		if err != nil {
			return err
		}
		now := time.Now().In(cfg.Location)
		if !last.IsZero() && sched.Next(last.In(cfg.Location)).Before(now) {
			log.Info("catching up a missed run", "last_run", last.Format(time.RFC3339))
			tick()
		}
	}
	for {
		next := sched.Next(time.Now().In(cfg.Location))
		log.Info("next run", "at", next.Format(time.RFC3339))
		select {
		case <-ctx.Done():
			log.Info("schedule stopped")
			return nil
		case <-time.After(time.Until(next)):
			tick()
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
