package pipeline

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"512MB", 512_000_000, false},
		{"1GB", 1_000_000_000, false},
		{"1 GiB", 1 << 30, false},
		{"1.5gb", 1_500_000_000, false},
		{"768MiB", 768 << 20, false},
		{"2G", 2_000_000_000, false},
		{"104857600", 100 << 20, false},
		{"0", 0, false},
		{"off", 0, false},
		{"", 1_000_000_000, false}, // the default
		{"1MB", 0, true},           // too small to be sane
		{"12 parsecs", 0, true},
		{"-1GB", 0, true},
		{"GB", 0, true},
	}
	for _, c := range cases {
		got, err := ParseByteSize(c.in)
		if c.bad != (err != nil) || got != c.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.bad)
		}
	}
}

func TestApplyLimits(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	for _, c := range []struct {
		set  string
		want int64
	}{{"768MiB", 768 << 20}, {"off", math.MaxInt64}, {"", 1_000_000_000}} {
		cfg := &Config{}
		cfg.DuckDB.GoMemoryLimit = c.set
		got, err := ApplyLimits(cfg)
		if err != nil || got != c.want || debug.SetMemoryLimit(-1) != c.want {
			t.Errorf("%q: ApplyLimits = %d, %v; runtime limit %d; want %d", c.set, got, err, debug.SetMemoryLimit(-1), c.want)
		}
	}
	cfg := &Config{}
	cfg.DuckDB.GoMemoryLimit = "lots"
	if _, err := ApplyLimits(cfg); err == nil {
		t.Error("ApplyLimits accepted \"lots\"")
	}
}
