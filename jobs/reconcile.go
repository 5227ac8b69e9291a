package jobs

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

func reconcileCommand() *cli.Command {
	return &cli.Command{
		Name:  "reconcile",
		Usage: "compare a period's rated totals with the invoices ConnectWise posted (no ingest); with --posted, print only",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "period", Required: true, Usage: "billing period `YYYY-MM`"},
			&cli.StringFlag{Name: "posted", Usage: "posted invoices `FILE` or folder (default: paths.posted)"},
			waitFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, period, err := configAndPeriod(cmd)
			if err != nil {
				return err
			}
			// With --posted the comparison is a what-if: printed, not published.
			stages := pipeline.PeriodStages(cfg)
			if p := cmd.String("posted"); p != "" {
				if cfg.Paths.Posted, err = filepath.Abs(p); err != nil {
					return err
				}
				stages = pipeline.BuildStages(cfg)
			}
			report := func(ctx context.Context, r *pipeline.Run) error {
				return printReconciliation(ctx, r, cmd.Root().Writer)
			}
			return runJob(ctx, cmd, cfg, period, "reconcile", stages, report)
		},
	}
}

// printReconciliation prints one line per customer; nothing posted for the period is itself
// something to review.
func printReconciliation(ctx context.Context, r *pipeline.Run, out io.Writer) error {
	rows, err := r.DB.QueryContext(ctx, `SELECT company_identifier, rated_total::VARCHAR, posted_total::VARCHAR,
		coalesce(variance_percent::VARCHAR, ''), status FROM reconciliation ORDER BY company_identifier`)
	if err != nil {
		r.NeedsReview("no_posted_invoices", 1)
		fmt.Fprintf(out, "no posted invoices for %s in %s\n", r.Period.Month, r.Cfg.Paths.Posted)
		return nil
	}
	defer rows.Close()
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "company\trated_total\tposted_total\tvariance_%\tstatus\t")
	for rows.Next() {
		var c, rated, posted, pct, status string
		if err := rows.Scan(&c, &rated, &posted, &pct, &status); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t\n", c, rated, posted, pct, status)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return w.Flush()
}
