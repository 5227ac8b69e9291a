package ingest

import (
	"fmt"
	"testing"
)

// BenchmarkNormalizeE164: numbers already written as E.164 (the fast path), without the cache.
func BenchmarkNormalizeE164(b *testing.B) {
	n := NewNormalizer("US")
	nums := make([]string, 10000)
	for i := range nums {
		nums[i] = fmt.Sprintf("+1305555%04d", i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n.normalize(nums[i%len(nums)])
	}
}
