package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

type countingStage struct {
	name string
	n    int64
	err  error
}

func (s countingStage) String() string { return s.name }
func (s countingStage) Run(_ context.Context, r *Run) error {
	r.Count(s.name+"_rows", s.n)
	return s.err
}

// One log line per stage with its duration and the counts it added; progress only when asked for.
func TestRunStagesLogAndProgress(t *testing.T) {
	var logs, progress bytes.Buffer
	r := &Run{Period: Period{Month: "2025-10"}, Log: slog.New(slog.NewJSONHandler(&logs, nil)), Progress: &progress}
	stages := []Stage{countingStage{name: "a", n: 3}, countingStage{name: "b", err: fmt.Errorf("%w: nothing to do", ErrSkip)}, countingStage{name: "c", n: 5}}
	if err := RunStages(context.Background(), r, stages); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), logs.String())
	}
	for i, want := range []string{`"stage":"a","seconds":`, `"msg":"stage skipped","stage":"b"`, `"stage":"c","seconds":`} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %s lacks %s", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[0], `"a_rows":3`) || strings.Contains(lines[2], `"a_rows"`) || !strings.Contains(lines[2], `"c_rows":5`) {
		t.Errorf("stage lines should carry the counts each stage added:\n%s\n%s", lines[0], lines[2])
	}
	for _, want := range []string{"[1/3] 2025-10 a", "[2/3] 2025-10 b", "[3/3] 2025-10 c"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress %q lacks %q", progress.String(), want)
		}
	}

	// A failing stage stops the job and names the stage.
	r.Progress = nil
	err := RunStages(context.Background(), r, []Stage{countingStage{name: "bad", err: fmt.Errorf("disk full")}, countingStage{name: "never"}})
	if err == nil || err.Error() != "bad: disk full" || r.Counts["never_rows"] != 0 {
		t.Errorf("err %v, counts %v", err, r.Counts)
	}
}
