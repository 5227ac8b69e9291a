package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"cdrbill/pipeline"
	"cdrbill/pipeline/testkit"
)

// A second run while one holds the data folder's lock exits 4 and does nothing; with --wait it
// waits for the lock and then runs.
func TestLockedRunExits4OrWaits(t *testing.T) {
	dir := t.TempDir()
	cfgPath := testkit.CopyDemo(t, dir)
	cfg := &pipeline.Config{}
	cfg.Paths.Staging = dir + "/fixtures/demo/staging"
	unlock, err := pipeline.Lock(context.Background(), cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "--config", cfgPath, "run", "--period", "2025-10")
	if code != ExitLocked || !strings.Contains(stderr, "another cdrbill run holds the lock") {
		t.Fatalf("exit %d, want %d: %s", code, ExitLocked, stderr)
	}
	if stdout != "" {
		t.Errorf("a locked-out run printed %q", stdout)
	}
	if _, err := pipeline.Lock(context.Background(), cfg, false); err == nil {
		t.Fatal("a second lock in the same process was granted")
	}

	go func() { time.Sleep(700 * time.Millisecond); unlock() }()
	code, stdout, stderr = runCLI(t, "--config", cfgPath, "run", "--period", "2025-10", "--wait")
	if code != ExitReview || !strings.Contains(stdout, "published") {
		t.Fatalf("--wait: exit %d: %s %s", code, stdout, stderr)
	}
}
