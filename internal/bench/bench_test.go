package bench

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopyro/gopyro/examples/interop"
)

// BenchmarkCases runs every case for every system as a go test benchmark:
// BenchmarkCases/<case>/<system>. The reported units/s metric is the
// case's unit (calls/s, MB/s, conns/s); for oneway it counts sends.
func BenchmarkCases(b *testing.B) {
	ctx := context.Background()
	e, err := NewEnv(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	for _, c := range Cases() {
		b.Run(c.Name, func(b *testing.B) {
			for _, s := range e.Systems {
				b.Run(strings.ReplaceAll(s.Name, "/", "-"), func(b *testing.B) {
					g := max(c.Goroutines, 1)
					run, units, done, ok, err := c.Op(ctx, e, s, g)
					if err != nil {
						b.Fatal(err)
					}
					if !ok {
						b.Skip("not supported by " + s.Name)
					}
					defer done()
					b.ReportAllocs()
					b.ResetTimer()
					var wg sync.WaitGroup
					per := (b.N + g - 1) / g
					for i := range g {
						wg.Go(func() {
							for range per {
								if err := run(i); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
					b.ReportMetric(float64(per*g)*units/b.Elapsed().Seconds(), c.Unit)
				})
			}
		})
	}
}

// TestCasesRun runs each case briefly, so a broken case fails the tests.
func TestCasesRun(t *testing.T) {
	ctx := t.Context()
	e, err := NewEnv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, c := range Cases() {
		for _, s := range e.Systems {
			m, ok, err := Measure(ctx, e, c, s, 20e6)
			if err != nil {
				t.Fatal(err)
			}
			if ok && m.Value <= 0 {
				t.Errorf("%s/%s measured %v", c.Name, s.Name, m.Value)
			}
		}
	}
}

// TestPyroRuns runs the pyro case briefly: both daemons answer the Python
// client with every serializer (the figures are for gopyro bench).
func TestPyroRuns(t *testing.T) {
	py, err := interop.FindPython(t.Context())
	if err != nil {
		t.Skip(err)
	}
	rs, err := Pyro(t.Context(), py, 50*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 8 {
		t.Fatalf("%d results, want 8", len(rs))
	}
	for _, r := range rs {
		if !(r.Rate > 0 && r.BaseRate > 0) {
			t.Errorf("%s: %v calls/s against %v", r.Case, r.Rate, r.BaseRate)
		}
	}
}
