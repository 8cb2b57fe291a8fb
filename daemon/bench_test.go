package daemon_test

import (
	"testing"

	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/proxy"
)

func benchProxy(b *testing.B) *proxy.Proxy {
	b.Helper()
	d := testutil.Serve(b)
	u, err := d.Register(&Calc{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := proxy.NewURI(u)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	b.ReportAllocs()
	return p
}

// BenchmarkSmallCall is one client calling a tiny method sequentially.
func BenchmarkSmallCall(b *testing.B) {
	p := benchProxy(b)
	for b.Loop() {
		if _, err := p.Call(b.Context(), "Echo", "0123456789abcdef"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSmallCallParallel is 8 goroutines sharing one proxy.
func BenchmarkSmallCallParallel(b *testing.B) {
	p := benchProxy(b)
	b.SetParallelism(4) // 4 x GOMAXPROCS(2) = 8 goroutines here
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Call(b.Context(), "Echo", "0123456789abcdef"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
