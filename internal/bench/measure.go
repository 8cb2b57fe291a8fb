package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Measurement is one system's figure for a case.
type Measurement struct {
	Value       float64 `json:"value"`
	AllocsPerOp float64 `json:"allocs_per_op"` // client and server together (one process)
	BytesPerOp  float64 `json:"bytes_per_op"`
	// Lost is the share of oneway calls sent that the server never ran
	// (a gopyro daemon drops those over its in-flight limit).
	Lost float64 `json:"lost,omitempty"`
}

// Measure runs c for s for about d and returns its rate in c.Unit.
func Measure(ctx context.Context, e *Env, c Case, s *System, d time.Duration) (Measurement, bool, error) {
	g := max(c.Goroutines, 1)
	run, units, done, ok, err := c.Op(ctx, e, s, g)
	if err != nil || !ok {
		return Measurement{}, ok, err
	}
	defer done()
	if err := run(0); err != nil { // warm up, and fail early
		return Measurement{}, true, fmt.Errorf("%s/%s: %w", c.Name, s.Name, err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var execBefore int64
	if c.Oneway {
		execBefore = s.Executed()
	}
	var ops atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := run(i); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	var executed int64
	elapsed := time.Since(start)
	if c.Oneway {
		// The rate at which the server ran them: wait for the calls sent
		// to have run, until no more run for 100ms (a daemon drops oneway
		// calls over its in-flight limit; those never run).
		tick := time.NewTicker(time.Millisecond)
		last, lastAt := int64(-1), time.Now()
		for {
			executed = s.Executed() - execBefore
			if executed != last {
				last, lastAt = executed, time.Now()
			}
			if executed >= ops.Load() || time.Since(lastAt) > 100*time.Millisecond {
				break
			}
			<-tick.C
		}
		tick.Stop()
		elapsed = max(elapsed, lastAt.Sub(start))
	}
	runtime.ReadMemStats(&after)
	if firstErr != nil {
		return Measurement{}, true, fmt.Errorf("%s/%s: %w", c.Name, s.Name, firstErr)
	}
	n := float64(ops.Load())
	m := Measurement{Value: n * units / elapsed.Seconds()}
	if c.Oneway {
		m.Value = float64(executed) / elapsed.Seconds()
		if n > 0 {
			m.Lost = max(0, 1-float64(executed)/n)
		}
	}
	if n > 0 {
		m.AllocsPerOp = float64(after.Mallocs-before.Mallocs) / n
		m.BytesPerOp = float64(after.TotalAlloc-before.TotalAlloc) / n
	}
	return m, true, nil
}

// Result is a case's figures: the median of the runs per system, and
// gopyro's ratio to each baseline.
type Result struct {
	Case     string                 `json:"case"`
	Doc      string                 `json:"doc"`
	Unit     string                 `json:"unit"`
	Baseline string                 `json:"baseline_work,omitempty"`
	Systems  map[string]Measurement `json:"systems"`
	Ratios   map[string]float64     `json:"ratios"` // gopyro / baseline
	Runs     int                    `json:"runs"`
}

// Options select and size a run.
type Options struct {
	Duration time.Duration // per case, system and run
	Runs     int           // the median of Runs is reported
	Cases    []string      // names; empty means all
}

// Run measures the selected cases and calls report with each result.
func Run(ctx context.Context, o Options, report func(Result) error) error {
	all := Cases()
	var sel []Case
	for _, c := range all {
		if len(o.Cases) == 0 || slices.Contains(o.Cases, c.Name) {
			sel = append(sel, c)
		}
	}
	for _, name := range o.Cases {
		if !slices.ContainsFunc(all, func(c Case) bool { return c.Name == name }) {
			return fmt.Errorf("unknown case %q (cases: %s)", name, strings.Join(CaseNames(), ", "))
		}
	}
	e, err := NewEnv(ctx)
	if err != nil {
		return err
	}
	defer e.Close()
	runs := max(o.Runs, 1)
	for _, c := range sel {
		r := Result{Case: c.Name, Doc: c.Doc, Unit: c.Unit, Baseline: c.Baseline, Systems: map[string]Measurement{}, Ratios: map[string]float64{}, Runs: runs}
		samples := map[string][]Measurement{}
		for range runs {
			// Interleave systems within a run, so drift on a shared
			// machine hits them alike.
			for _, s := range e.Systems {
				if err := ctx.Err(); err != nil {
					return err
				}
				m, ok, err := Measure(ctx, e, c, s, o.Duration)
				if err != nil {
					return err
				}
				if ok {
					samples[s.Name] = append(samples[s.Name], m)
				}
			}
		}
		for name, ms := range samples {
			r.Systems[name] = median(ms)
		}
		if g, ok := r.Systems["gopyro"]; ok {
			for name, m := range r.Systems {
				if name != "gopyro" && m.Value > 0 {
					r.Ratios[name] = g.Value / m.Value
				}
			}
		}
		if err := report(r); err != nil {
			return err
		}
	}
	return nil
}

func median(ms []Measurement) Measurement {
	sort.Slice(ms, func(i, j int) bool { return ms[i].Value < ms[j].Value })
	return ms[len(ms)/2]
}

// CaseNames lists the case names.
func CaseNames() []string {
	var names []string
	for _, c := range Cases() {
		names = append(names, c.Name)
	}
	return append(names, "soak", "classic", "gpu", "pyro")
}

// SystemOrder is the order systems are printed in.
var SystemOrder = []string{"gopyro", "rpcx", "net/rpc", "tcp"}
