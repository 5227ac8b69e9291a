package pipeline

import (
	"context"
	"testing"
)

func TestRoundRatio(t *testing.T) {
	r := newTestRun(t)
	cases := []struct {
		n, d   int64
		method string
		want   int64
	}{
		{7, 2, "down", 3}, {7, 2, "up", 4}, {7, 2, "half_up", 4}, {7, 2, "half_even", 4},
		{5, 2, "half_even", 2}, {5, 2, "half_up", 3}, {5, 2, "up", 3}, {5, 2, "down", 2},
		{6, 4, "half_even", 2}, {6, 1, "up", 6}, {0, 3, "up", 0},
		{-7, 2, "half_up", -4}, {-5, 2, "half_even", -2}, {-1, 3, "up", -1},
		{71666666667, 100000000000, "up", 1}, {11, 10, "half_up", 1},
	}
	for _, c := range cases {
		var got int64
		err := r.DB.QueryRowContext(context.Background(),
			"SELECT CAST(round_ratio(?::HUGEINT, ?::HUGEINT, ?) AS BIGINT)", c.n, c.d, c.method).Scan(&got)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("round_ratio(%d, %d, %s) = %d, want %d", c.n, c.d, c.method, got, c.want)
		}
	}
}

func TestHalfUp2IsExact(t *testing.T) {
	r := newTestRun(t)
	cases := map[string]string{
		"0.125": "0.13", "0.135": "0.14", "4.125": "4.13", "2.0625": "2.06", "-0.125": "-0.13",
		"0.0049999999999999": "0.00", "0.683736": "0.68", "1234567.995": "1234568.00",
	}
	for in, want := range cases {
		var got string
		q := "SELECT CAST(half_up_2(CAST('" + in + "' AS DECIMAL(38,16))) AS VARCHAR)"
		if err := r.DB.QueryRowContext(context.Background(), q).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("half_up_2(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestSafeText(t *testing.T) {
	cases := map[string]string{
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")", "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
		"-2+3": "'-2+3", "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\rx": "'\rx",
		"+15550100": "+15550100", "-12.50": "-12.50", "Acme": "Acme", "": "",
	}
	for in, want := range cases {
		if got := SafeText(in); got != want {
			t.Errorf("SafeText(%q) = %q, want %q", in, got, want)
		}
	}
}
