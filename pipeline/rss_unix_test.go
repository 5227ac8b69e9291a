//go:build unix

package pipeline

import "syscall"

// peakRSSMB is the process's peak resident memory in MiB (DuckDB runs in process); 0 if unknown.
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux
}
