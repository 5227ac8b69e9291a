package pipeline

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// StageTiming is what one stage of a measured run took.
type StageTiming struct {
	Stage   string
	Elapsed time.Duration
	// PeakRSS is the process's peak resident memory (VmHWM) while the stage ran, in bytes; 0 when
	// unknown. When the kernel lets the peak be reset (/proc/self/clear_refs), it is the peak of
	// this stage alone; otherwise the peak so far.
	PeakRSS int64
	// GoMem is the memory the Go runtime holds from the system when the stage ends (heap, stacks,
	// runtime structures; not what it has returned), in bytes: PeakRSS minus GoMem is roughly
	// DuckDB's (C++) part.
	GoMem int64
	// Counts are the run counts (Run.Count) the stage added.
	Counts  map[string]int64
	Skipped bool
}

// timedStage runs a stage and records its timing.
type timedStage struct {
	Stage
	record func(StageTiming)
}

func (s timedStage) Run(ctx context.Context, r *Run) error {
	before := maps.Clone(r.Counts)
	ResetPeakRSS()
	t0 := time.Now()
	err := s.Stage.Run(ctx, r)
	t := StageTiming{Stage: s.String(), Elapsed: time.Since(t0), PeakRSS: PeakRSS(), GoMem: GoMem(), Skipped: errors.Is(err, ErrSkip)}
	for k, v := range r.Counts {
		if d := v - before[k]; d != 0 {
			if t.Counts == nil {
				t.Counts = map[string]int64{}
			}
			t.Counts[k] = d
		}
	}
	s.record(t)
	return err
}

// TimeStages wraps stages so that each reports its timing to record when it ends (also when it
// fails or skips).
func TimeStages(stages []Stage, record func(StageTiming)) []Stage {
	out := make([]Stage, len(stages))
	for i, s := range stages {
		out[i] = timedStage{Stage: s, record: record}
	}
	return out
}

// RunNightlyTimed is RunNightly with a timing per stage.
func RunNightlyTimed(ctx context.Context, r *Run) ([]StageTiming, error) {
	var timings []StageTiming
	err := Execute(ctx, r, TimeStages(NightlyStages(r.Cfg), func(t StageTiming) { timings = append(timings, t) }))
	return timings, err
}

// PeakRSS is the process's peak resident set size (VmHWM in /proc/self/status) in bytes, or 0
// where that file does not exist.
func PeakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// GoMem is the memory the Go runtime holds from the system and has not returned, in bytes.
func GoMem() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.Sys - m.HeapReleased)
}

// ResetPeakRSS resets VmHWM to the current RSS (Linux: "5" to /proc/self/clear_refs) and
// reports whether it could.
func ResetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
