package pipeline

import (
	"testing"
	"unsafe"
)

func TestDupRef(t *testing.T) {
	cases := []struct {
		file int32
		line int64
		bad  bool
	}{
		{0, 0, false},
		{0, 1, false},
		{3, 12345, false},
		{1<<24 - 1, 1<<40 - 1, false},
		{1 << 24, 1, true},
		{1, 1 << 40, true},
		{-1, 1, true},
		{1, -1, true},
	}
	for _, c := range cases {
		d, err := newDupRef(c.file, c.line)
		if c.bad {
			if err == nil {
				t.Errorf("newDupRef(%d, %d) accepted", c.file, c.line)
			}
			continue
		}
		if err != nil || d.file() != c.file || d.line() != c.line {
			t.Errorf("newDupRef(%d, %d) = file %d line %d, %v", c.file, c.line, d.file(), d.line(), err)
		}
	}
	if s := unsafe.Sizeof(dupRef(0)); s != 8 {
		t.Errorf("dupRef is %d bytes, want 8", s)
	}
}
