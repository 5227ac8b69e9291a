//go:build !unix

package pipeline

func peakRSSMB() float64 { return 0 }
