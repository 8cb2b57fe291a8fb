package proxy_test

import (
	"testing"

	"github.com/gopyro/gopyro/proxy"
)

// BenchmarkBatch100 sends 100 Add calls in one batch per iteration;
// BenchmarkSingle100 makes the same 100 calls one by one. Compare their
// calls/s.
func BenchmarkBatch100(b *testing.B) {
	_, _, p := serveWorker(b)
	ctx := b.Context()
	for b.Loop() {
		bt := p.Batch()
		for i := range 100 {
			bt.Call("Add", i, i)
		}
		res, err := bt.Run(ctx)
		if err != nil || len(res) != 100 || res[99].Err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "calls/s")
}

func BenchmarkSingle100(b *testing.B) {
	_, _, p := serveWorker(b)
	ctx := b.Context()
	for b.Loop() {
		for i := range 100 {
			if _, err := proxy.Call[int](ctx, p, "Add", i, i); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkStream reads a stream of 100-byte strings; one op is one item.
func BenchmarkStream(b *testing.B) {
	_, _, p := serveWorker(b)
	n := 0
	for _, err := range proxy.Stream[string](b.Context(), p, "Lines", b.N) {
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	if n != b.N {
		b.Fatalf("%d items, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
}
