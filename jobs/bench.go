package jobs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"cdrbill/pipeline"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "generate N synthetic CDRs, run the nightly job on them in this process and compare it with DuckDB's CSV-to-Parquet floor",
		Description: "Generates a complete synthetic data folder (cdrbill.toml, 5 000 customers, a 50 000-prefix rate deck,\n" +
			"N generic-format CDRs for 2025-10; every number fictional), runs the nightly job on it with the\n" +
			"folder's own config (--config is ignored) and prints, per step, the rows, seconds, rows/s, the\n" +
			"process's peak RSS during the step and the memory the Go runtime holds (the rest is DuckDB's);\n" +
			"then the floor (DuckDB, same settings, reading the same CSV files and writing them to Parquet)\n" +
			"and the ratio full run / floor. rows/s is the run's CDR rows over the step's seconds.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "rows", Value: 100_000, Usage: "number of synthetic CDRs `N`"},
			&cli.StringFlag{Name: "dir", Usage: "data `FOLDER` to generate into (must be empty or made by an earlier bench; it is kept); default a temporary folder"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the temporary folder"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "random `SEED` of the synthetic data"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile of the run (not the generation) to `FILE` (go tool pprof)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			rows := cmd.Int("rows")
			if rows <= 0 {
				return usageError{fmt.Errorf("--rows must be positive")}
			}
			dir := cmd.String("dir")
			if dir == "" {
				tmp, err := os.MkdirTemp("", "cdrbill-bench-")
				if err != nil {
					return err
				}
				dir = tmp
				if !cmd.Bool("keep") {
					defer os.RemoveAll(tmp)
				}
			}
			dir, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			return bench(ctx, cmd, dir, rows, cmd.Int64("seed"))
		},
	}
}

// benchStep is one line of the bench table.
type benchStep struct {
	name    string
	rows    int64
	elapsed time.Duration
	peakRSS int64
	goMem   int64
	note    string
	skipped bool
}

func bench(ctx context.Context, cmd *cli.Command, dir string, rows int, seed int64) error {
	out := cmd.Root().Writer
	var steps []benchStep

	pipeline.ResetPeakRSS()
	t0 := time.Now()
	if err := pipeline.Synthesize(dir, rows, seed); err != nil {
		return err
	}
	steps = append(steps, benchStep{"generate", int64(rows), time.Since(t0), pipeline.PeakRSS(), pipeline.GoMem(), "", false})
	files := pipeline.SynthFiles(dir, rows)
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			size += st.Size()
		}
	}

	// The generated folder's own config, read exactly as `run` reads --config.
	if err := cmd.Set("config", filepath.Join(dir, "cdrbill.toml")); err != nil {
		return err
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cdrbill bench: %d CDRs in %d file(s) (%.1f MiB), seed %d, folder %s\n", rows, len(files), float64(size)/(1<<20), seed, dir)
	fmt.Fprintf(out, "duckdb: memory_limit %s, threads %d, temp_directory %s\n", cfg.DuckDB.MemoryLimit, cfg.DuckDB.Threads, cfg.DuckDB.TempDirectory)

	// The full run: what `cdrbill run` does (setup with the reference load, then the stages).
	period, _ := pipeline.ParsePeriod(pipeline.SynthPeriod)
	log := slog.New(slog.NewTextHandler(cmd.Root().ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pipeline.CdrbillVersion = Version
	if p := cmd.String("cpuprofile"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if _, err := pipeline.ApplyLimits(cfg); err != nil {
		return err
	}
	pipeline.ResetPeakRSS()
	runStart := time.Now()
	r, err := pipeline.NewRun(ctx, cfg, period, log)
	if err != nil {
		return err
	}
	steps = append(steps, benchStep{"setup + reference", int64(rows), time.Since(runStart), pipeline.PeakRSS(), pipeline.GoMem(), "", false})
	timings, runErr := pipeline.RunNightlyTimed(ctx, r)
	runElapsed := time.Since(runStart)
	review := r.Review
	r.Close()
	runPeak := steps[len(steps)-1].peakRSS
	for _, t := range timings {
		note := countsNote(t.Counts)
		if t.Skipped {
			note = strings.TrimSpace("skipped " + note)
		}
		steps = append(steps, benchStep{t.Stage, int64(rows), t.Elapsed, t.PeakRSS, t.GoMem, note, t.Skipped})
		runPeak = max(runPeak, t.PeakRSS)
	}
	steps = append(steps, benchStep{"full run", int64(rows), runElapsed, runPeak, pipeline.GoMem(), "", false})
	if runErr != nil {
		printBench(out, steps)
		return fmt.Errorf("bench run: %w", runErr)
	}

	// The floor: DuckDB alone, same settings, reading the same files and writing Parquet.
	pipeline.ResetPeakRSS()
	floor, n, err := benchFloor(ctx, cfg, files, filepath.Join(dir, "floor.parquet"))
	if err != nil {
		printBench(out, steps)
		return err
	}
	steps = append(steps, benchStep{"floor: duckdb csv -> parquet", n, floor, pipeline.PeakRSS(), pipeline.GoMem(), "", false})
	printBench(out, steps)
	fmt.Fprintf(out, "ratio full run / floor: %.2f\n", runElapsed.Seconds()/floor.Seconds())
	var peak int64
	for _, s := range steps {
		peak = max(peak, s.peakRSS)
	}
	fmt.Fprintf(out, "process peak RSS: %s MiB\n", mib(peak))
	for _, it := range review {
		fmt.Fprintf(out, "review: %s: %d\n", it.Kind, it.Count)
	}
	return nil
}

// benchFloor converts the CSV files to one Parquet file with DuckDB alone and returns the time
// and the rows written.
func benchFloor(ctx context.Context, cfg *pipeline.Config, files []string, parquet string) (time.Duration, int64, error) {
	db, err := pipeline.OpenDB(ctx, cfg.DuckDB)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	defer os.Remove(parquet)
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "'" + strings.ReplaceAll(f, "'", "''") + "'"
	}
	q := fmt.Sprintf("COPY (SELECT * FROM read_csv([%s], header = true)) TO '%s' (FORMAT parquet)",
		strings.Join(quoted, ", "), strings.ReplaceAll(parquet, "'", "''"))
	t0 := time.Now()
	res, err := db.ExecContext(ctx, q)
	if err != nil {
		return 0, 0, fmt.Errorf("bench floor: %w", err)
	}
	elapsed := time.Since(t0)
	n, err := res.RowsAffected()
	if err != nil {
		return 0, 0, fmt.Errorf("bench floor: %w", err)
	}
	return elapsed, n, nil
}

func printBench(w io.Writer, steps []benchStep) {
	const format = "%-30s %11s %9s %11s %13s %7s  %s\n"
	fmt.Fprintf(w, format, "step", "rows", "seconds", "rows/s", "peak RSS MiB", "Go MiB", "counts")
	for _, s := range steps {
		rate := "-"
		if secs := s.elapsed.Seconds(); secs > 0 && !s.skipped {
			rate = fmt.Sprintf("%.0f", float64(s.rows)/secs)
		}
		fmt.Fprintf(w, format, s.name, fmt.Sprint(s.rows), fmt.Sprintf("%.3f", s.elapsed.Seconds()), rate, mib(s.peakRSS), mib(s.goMem), s.note)
	}
}

func mib(b int64) string {
	if b <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f", float64(b)/(1<<20))
}

// countsNote lists the run counts a stage added, sorted by name.
func countsNote(c map[string]int64) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, c[k])
	}
	return strings.Join(parts, " ")
}
