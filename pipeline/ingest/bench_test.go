package ingest

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// genericRows builds n generic rows (voice, a few data rows), offsets and local times mixed.
func genericRows(n int) []byte {
	var b bytes.Buffer
	b.WriteString("call_id,account,direction,origin,destination,start,duration,usage_type,bytes\r\n")
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		ts := t0.Add(time.Duration(i) * 7 * time.Second)
		if i%10 == 9 {
			fmt.Fprintf(&b, "d%d,ACME%d,,,,%s,,data,%d\r\n", i, i%50, ts.Format(time.RFC3339), 1000+i)
			continue
		}
		start := ts.Format(time.RFC3339)
		if i%2 == 0 {
			start = ts.Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(&b, "c%d,ACME%d,outbound,30555501%02d,+1305555%04d,%s,%d,voice,\r\n", i, i%50, i%100, i%10000, start, i%3600)
	}
	return b.Bytes()
}

func asteriskRows(n int) []byte {
	var b bytes.Buffer
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		ts := t0.Add(time.Duration(i) * 7 * time.Second)
		s, a := ts.Format("2006-01-02 15:04:05"), ts.Add(3*time.Second).Format("2006-01-02 15:04:05")
		fmt.Fprintf(&b, `"ACME","10%02d","305555%04d","from-internal","""Alice"" <1001>","SIP/1001-%d","SIP/trunk-%d","Dial","SIP/trunk/3055550123,30","%s","%s","%s",%d,%d,"ANSWERED","DOCUMENTATION","%d.%d",""`+"\n",
			i%100, i%10000, i, i, s, a, a, i%600+3, i%600, ts.Unix(), i)
	}
	return b.Bytes()
}

func benchParse(b *testing.B, format string, data []byte, rows int) {
	p, _ := Lookup(format)
	ny, _ := time.LoadLocation("America/New_York")
	opt := Options{Location: ny, Country: "US", Account: "X"}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		err := p.Parse(bytes.NewReader(data), opt, func(Record) error { n++; return nil }, func(r Reject) error { b.Fatalf("%+v", r); return nil })
		if err != nil || n != rows {
			b.Fatalf("%v, %d rows", err, n)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkParseGeneric(b *testing.B) { benchParse(b, "generic", genericRows(100_000), 100_000) }
func BenchmarkParseAsterisk(b *testing.B) {
	benchParse(b, "asterisk", asteriskRows(100_000), 100_000)
}

func BenchmarkNormalize(b *testing.B) {
	n := NewNormalizer("US")
	for i := 0; i < b.N; i++ {
		n.normalize(fmt.Sprintf("305555%04d", i%10000))
	}
}
