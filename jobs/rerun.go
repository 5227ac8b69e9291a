package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

func rerunCommand() *cli.Command {
	return &cli.Command{
		Name:  "rerun",
		Usage: "an auditor's rerun of a date range from the staged Parquet, with the inputs each period was published with, into DIR",
		Description: "Rebuilds every month the range touches into DIR/YYYY-MM/ (no ingest; staging, the published outputs,\n" +
			"runs.csv and the invoice number book are not written). A range that covers part of a month bills\n" +
			"only the CDRs whose usage date (billing time zone) is in the range, still labelled as that month.\n" +
			"--verify compares each month with output/YYYY-MM/ (checksums, then row by row; manifest.json without\n" +
			"its run section), prints every difference, writes DIR/verify-YYYY-MM.csv, and exits 3 when any differ.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Required: true, Usage: "first usage `DATE` (YYYY-MM-DD, billing time zone)"},
			&cli.StringFlag{Name: "to", Required: true, Usage: "last usage `DATE` (YYYY-MM-DD), inclusive"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "`DIR` to write the months into"},
			&cli.BoolFlag{Name: "verify", Usage: "compare with what was published and list every difference (exit 3 when any)"},
			&cli.BoolFlag{Name: "all-staged", Usage: "use every staged CDR file, also those ingested after the period was published"},
			waitFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			var opt pipeline.RerunOptions
			var err error
			if opt.From, err = time.Parse(time.DateOnly, cmd.String("from")); err != nil {
				return usageError{fmt.Errorf("--from %q: want YYYY-MM-DD", cmd.String("from"))}
			}
			if opt.To, err = time.Parse(time.DateOnly, cmd.String("to")); err != nil {
				return usageError{fmt.Errorf("--to %q: want YYYY-MM-DD", cmd.String("to"))}
			}
			if opt.To.Before(opt.From) {
				return usageError{fmt.Errorf("--to %s is before --from %s", cmd.String("to"), cmd.String("from"))}
			}
			opt.Out, opt.Verify, opt.AllStaged = cmd.String("out"), cmd.Bool("verify"), cmd.Bool("all-staged")
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			unlock, err := pipeline.Lock(ctx, cfg, cmd.Bool("wait"))
			if err != nil {
				return err
			}
			defer unlock()
			pipeline.CdrbillVersion = Version
			log := newLogger(cmd.Root().ErrWriter)
			res, err := pipeline.Rerun(ctx, cfg, opt, log)
			w := cmd.Root().Writer
			var diffs int64
			for _, p := range res {
				snap := "snapshot " + p.Snapshot
				if p.Snapshot == "" {
					snap = "current reference data (no snapshot)"
				}
				part := ""
				if p.Partial {
					part = " (part of the month)"
				}
				fmt.Fprintf(w, "rerun %s%s -> %s with %s in %.2fs\n", p.Month, part, p.Dir, snap, p.Seconds)
				if !opt.Verify {
					continue
				}
				if len(p.Differences) == 0 {
					fmt.Fprintf(w, "verify %s: identical to %s\n", p.Month, p.Published)
					continue
				}
				fmt.Fprintf(w, "verify %s: %d difference(s) from %s\n", p.Month, len(p.Differences), p.Published)
				for _, d := range p.Differences {
					fmt.Fprintf(w, "  %s %s", d.File, d.Change)
					if d.Key != "" {
						fmt.Fprintf(w, " key=%s", d.Key)
					}
					if d.PrevLine > 0 {
						fmt.Fprintf(w, " published line %d", d.PrevLine)
					}
					if d.Line > 0 {
						fmt.Fprintf(w, " rerun line %d", d.Line)
					}
					fmt.Fprintf(w, ": %s\n", d.Row)
				}
				diffs += int64(len(p.Differences))
			}
			if err != nil {
				return err
			}
			if diffs > 0 {
				return reviewError{[]pipeline.ReviewItem{{Kind: "verify_differences", Count: diffs}}}
			}
			return nil
		},
	}
}
