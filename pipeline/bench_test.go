package pipeline

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"

	"cdrbill/pipeline/ingest"
)

// synthConfig reads a synthesized folder's cdrbill.toml as jobs.loadConfig does (strict keys,
// defaults, validation).
func synthConfig(tb testing.TB, dir string) *Config {
	tb.Helper()
	if !slices.Contains(ingest.Formats(), "generic") {
		tb.Skip("no generic CDR parser registered yet (the ingest stage has not landed)")
	}
	var cfg Config
	path := filepath.Join(dir, "cdrbill.toml")
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		tb.Fatalf("unknown keys %v", u)
	}
	cfg.File, cfg.Dir = path, dir
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	return &cfg
}

// BenchmarkNightly measures the whole nightly run (setup with the reference load, then every
// stage NightlyStages has) on 20 000 synthetic CDRs, from an empty staging and output each time.
func BenchmarkNightly(b *testing.B) {
	const rows = 20_000
	dir := b.TempDir()
	if err := Synthesize(dir, rows, 1); err != nil {
		b.Fatal(err)
	}
	cfg := synthConfig(b, dir)
	period, _ := ParsePeriod(SynthPeriod)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for _, p := range []string{cfg.Paths.Staging, cfg.Paths.Output} {
			if err := os.RemoveAll(p); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		r, err := NewRun(ctx, cfg, period, log)
		if err != nil {
			b.Fatal(err)
		}
		if err := RunNightly(ctx, r); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestRunNightlyTimed checks that the timing wrapper reports every nightly stage, in order, once.
func TestRunNightlyTimed(t *testing.T) {
	dir := t.TempDir()
	if err := Synthesize(dir, 1000, 1); err != nil {
		t.Fatal(err)
	}
	cfg := synthConfig(t, dir)
	period, _ := ParsePeriod(SynthPeriod)
	ctx := context.Background()
	r, err := NewRun(ctx, cfg, period, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	timings, err := RunNightlyTimed(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, s := range NightlyStages(cfg) {
		want = append(want, s.String())
	}
	for _, tm := range timings {
		got = append(got, tm.Stage)
		if tm.Elapsed <= 0 {
			t.Errorf("%s: elapsed %v", tm.Stage, tm.Elapsed)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("timed stages %v, want %v", got, want)
	}
	if r.Published == "" {
		t.Error("the timed run published nothing")
	}
}

// TestTimeStagesCounts checks the counts a timed stage reports are only the ones it added.
func TestTimeStagesCounts(t *testing.T) {
	r := newTestRun(t)
	r.Count("before", 5)
	var got []StageTiming
	stages := TimeStages([]Stage{countStage{"a", map[string]int64{"before": 2, "new": 7}}, countStage{"b", nil}},
		func(s StageTiming) { got = append(got, s) })
	if err := RunStages(context.Background(), r, stages); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Stage != "a" || got[1].Stage != "b" {
		t.Fatalf("timings %+v", got)
	}
	if got[0].Counts["before"] != 2 || got[0].Counts["new"] != 7 || len(got[0].Counts) != 2 {
		t.Errorf("stage a counts %v, want before=2 new=7", got[0].Counts)
	}
	if len(got[1].Counts) != 0 {
		t.Errorf("stage b counts %v, want none", got[1].Counts)
	}
	if PeakRSS() <= 0 {
		t.Error("no peak RSS on this system")
	}
}

type countStage struct {
	name string
	add  map[string]int64
}

func (s countStage) String() string { return s.name }

func (s countStage) Run(ctx context.Context, r *Run) error {
	for k, v := range s.add {
		r.Count(k, v)
	}
	return nil
}
