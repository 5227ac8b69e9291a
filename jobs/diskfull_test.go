package jobs

import (
	"bytes"
	"cdrbill/pipeline/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A disk that fills up, or turns read-only, in the middle of a run ends it with exit 1 and a
// clear message (Go's or DuckDB's wording, which capitalises it); the published period stays exactly as it was, and the next run after the disk
// is fixed publishes normally. The output folder is a small tmpfs, so the test needs root (CI
// and this project's machines run as root); elsewhere it is skipped with a message.
func TestDiskFullAndReadOnlyOutput(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a 1 MiB tmpfs as the output folder")
	}
	dir := t.TempDir()
	cfg := testkit.CopyDemo(t, dir)
	out := filepath.Join(dir, "output")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", out).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, b)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", out).Run() })

	if code, _, stderr := runCLI(t, "--config", cfg, "run", "--period", "2025-10"); code != ExitReview {
		t.Fatalf("first run: exit %d: %s", code, stderr)
	}
	published := outputState(t, dir)

	// Late usage arrives, but the disk has only 16 KiB left: usage_detail.csv alone is larger.
	late := "call_id,account,direction,origin,destination,start,duration,usage_type,bytes\n" +
		"L1,1001,outbound,+13055550101,+12125550142,2025-10-15T10:00:00-04:00,120,voice,\n"
	inbox := filepath.Join(dir, "fixtures", "demo", "inbox", "pbx1")
	if err := os.WriteFile(filepath.Join(inbox, "late.csv"), []byte(late), 0o644); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(out, "filler")
	fill(t, filler, 16<<10)
	code, _, stderr := runCLI(t, "--config", cfg, "run", "--period", "2025-10")
	if code != ExitFailed || !strings.Contains(strings.ToLower(stderr), "no space left on device") {
		t.Fatalf("disk full: exit %d, want %d with 'no space left on device': %s", code, ExitFailed, stderr)
	}
	assertPublished(t, dir, published, "disk full")

	// The disk turns read-only.
	os.Remove(filler)
	if b, err := exec.Command("mount", "-o", "remount,ro", out).CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v %s", err, b)
	}
	code, _, stderr = runCLI(t, "--config", cfg, "run", "--period", "2025-10")
	if code != ExitFailed || !strings.Contains(strings.ToLower(stderr), "read-only file system") {
		t.Fatalf("read-only: exit %d, want %d with 'read-only file system': %s", code, ExitFailed, stderr)
	}
	assertPublished(t, dir, published, "read-only")

	// Fixed: the late usage is published as a new version.
	if b, err := exec.Command("mount", "-o", "remount,rw", out).CombinedOutput(); err != nil {
		t.Fatalf("remount rw: %v %s", err, b)
	}
	code, stdout, stderr := runCLI(t, "--config", cfg, "run", "--period", "2025-10")
	if code != ExitReview || !strings.Contains(stdout, "published") {
		t.Fatalf("after the fix: exit %d: %s %s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "2025-10.versions", "v1", "usage_detail.csv")); err != nil {
		t.Errorf("the previous version was not kept: %v", err)
	}
}

// fill writes zeros to path until only free bytes are left on its file system.
func fill(t *testing.T, path string, free int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	size := int64(st.Bavail)*st.Bsize - free
	if size <= 0 {
		return
	}
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

// assertPublished checks the published outputs are byte-identical to before a failed run and no
// work folder or temporary file was left in output/.
func assertPublished(t *testing.T, dir string, want map[string][]byte, when string) {
	t.Helper()
	got := outputState(t, dir)
	delete(got, "filler")
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s: published %s changed", when, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: %s left in output/", when, name)
		}
	}
}
