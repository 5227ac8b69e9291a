package jobs

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

func preflightCommand() *cli.Command {
	return &cli.Command{
		Name:  "preflight",
		Usage: "the 10-step readiness self-audit: runs the job on a scratch copy, prints a checklist, writes preflight.csv and preflight.md",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "write the report to `DIR` (default: <paths.output>/preflight)"},
			&cli.StringFlag{Name: "period", Usage: "audit billing period `YYYY-MM` (default: the month of the latest staged usage)"},
			&cli.StringFlag{Name: "now", Hidden: true, Usage: "the clock, RFC 3339 (tests and golden reports)"},
			waitFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			period, err := periodFlag(cmd)
			if err != nil {
				return err
			}
			var now time.Time
			if s := cmd.String("now"); s != "" {
				if now, err = time.Parse(time.RFC3339, s); err != nil {
					return usageError{fmt.Errorf("--now %q: want RFC 3339", s)}
				}
			}
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return preflight(ctx, cmd, cfg, pipeline.PreflightOptions{Out: cmd.String("out"), Period: period, Now: now, Wait: cmd.Bool("wait")})
		},
	}
}

// preflight runs the audit, prints the checklist and writes DIR/preflight.csv and preflight.md.
// Exit 0 when every step passes, 3 when any warns or fails.
func preflight(ctx context.Context, cmd *cli.Command, cfg *pipeline.Config, opt pipeline.PreflightOptions) error {
	log := newLogger(cmd.Root().ErrWriter)
	opt.Log = log
	if opt.Out == "" {
		opt.Out = filepath.Join(cfg.Paths.Output, "preflight")
	}
	t0 := time.Now()
	rep, err := pipeline.Preflight(ctx, cfg, opt)
	if err != nil {
		return err
	}
	if err := rep.WriteFiles(opt.Out); err != nil {
		return fmt.Errorf("preflight report: %w", err)
	}
	out := cmd.Root().Writer
	if err := rep.WriteText(out); err != nil {
		return err
	}
	fmt.Fprintf(out, "report: %s, %s\n", filepath.Join(opt.Out, "preflight.csv"), filepath.Join(opt.Out, "preflight.md"))
	log.Info("preflight done", "seconds", time.Since(t0).Round(time.Millisecond).Seconds())
	if rep.OK() {
		return nil
	}
	var items []pipeline.ReviewItem
	for _, s := range rep.Steps {
		if s.Status != pipeline.PreflightPass {
			items = append(items, pipeline.ReviewItem{Kind: fmt.Sprintf("preflight_step_%d_%s", s.No, s.Status), Count: 1})
		}
	}
	return reviewResult(items)
}
