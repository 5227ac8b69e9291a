package pipeline

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The process's memory budget is set by configuration, never left to luck:
//
//	duckdb.memory_limit     DuckDB's buffer pool (tables, sorts, joins, hash tables); beyond it
//	                        DuckDB spills to duckdb.temp_directory instead of growing
//	duckdb.go_memory_limit  the Go runtime's soft limit (debug.SetMemoryLimit): parsers, Parquet
//	                        writers, the duplicate index, reference loading; the garbage collector
//	                        works harder as the Go heap nears it
//	+ about 150 MiB         the binary, DuckDB's allocations outside its pool, thread stacks
//
// so peak RSS ≈ memory_limit + go_memory_limit + 150 MiB. The Go limit is soft: a live heap larger
// than it is not an error, the GC then runs continuously (capped at half the CPU). What grows with
// the data stays under it: between files the duplicate index holds at most half of it (dedupBudget; whole usage
// dates are dropped and read again from staging when met again). The GOMEMLIMIT environment
// variable, when set, wins over the config (an operator's override for one run).

// DefaultGoMemoryLimit is duckdb.go_memory_limit when the config leaves it out.
const DefaultGoMemoryLimit = "1GB"

// ApplyLimits applies the config's Go memory limit to this process and returns the limit in
// bytes (math.MaxInt64 when off, or the GOMEMLIMIT in force when that variable is set). Call it
// once where a run starts, before NewRun (jobs/run.go runJob; the bench too).
func ApplyLimits(cfg *Config) (int64, error) {
	n, fromEnv, err := goMemoryLimit(cfg)
	if err != nil || fromEnv {
		return n, err
	}
	debug.SetMemoryLimit(n)
	return n, nil
}

// goMemoryLimit is the Go memory limit a run works under, in bytes (math.MaxInt64 when off):
// GOMEMLIMIT's when that variable is set (fromEnv; the runtime applied it at start), else
// duckdb.go_memory_limit.
func goMemoryLimit(cfg *Config) (limit int64, fromEnv bool, err error) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), true, nil
	}
	n, err := ParseByteSize(cfg.DuckDB.GoMemoryLimit)
	if err != nil {
		return 0, false, fmt.Errorf("duckdb.go_memory_limit: %w", err)
	}
	if n == 0 {
		n = math.MaxInt64 // "0" or "off": no limit
	}
	return n, false, nil
}

// ParseByteSize reads a size as DuckDB writes memory_limit: a number and a unit, KB MB GB TB
// (powers of 1000) or KiB MiB GiB TiB (powers of 1024), B or no unit for bytes; case and spaces
// ignored; "0", "off" and "none" are 0 (no limit). "" is the default, DefaultGoMemoryLimit.
func ParseByteSize(s string) (int64, error) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	switch t {
	case "":
		return ParseByteSize(DefaultGoMemoryLimit)
	case "0", "off", "none":
		return 0, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], t[i:]
	}
	units := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
	mult, ok := units[unit]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (want KB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q: not a size (e.g. 512MB, 1GB)", s)
	}
	b := v * mult
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	if b < 16<<20 && b != 0 {
		return 0, fmt.Errorf("%q: below 16 MiB; the run would spend its time collecting garbage (use 0 for no limit)", s)
	}
	return int64(b), nil
}
