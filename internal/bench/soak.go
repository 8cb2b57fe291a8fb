package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/echoserver"
	"github.com/gopyro/gopyro/proxy"
)

// SoakResult is what a soak run measured: the traffic it carried and the
// process's resources before and after it.
type SoakResult struct {
	Duration   time.Duration  `json:"duration_ns"`
	Ops        int64          `json:"ops"`
	OpsPerSec  float64        `json:"ops_per_sec"`
	P50ms      float64        `json:"p50_ms"`
	P99ms      float64        `json:"p99_ms"`
	Errors     int64          `json:"errors"`
	FirstError string         `json:"first_error,omitempty"`
	ByKind     map[string]int `json:"by_kind"`
	Start      Resources      `json:"start"`
	End        Resources      `json:"end"`
}

// Resources are a process's counts at one moment.
type Resources struct {
	RSS        int64 `json:"rss_bytes"`
	Goroutines int   `json:"goroutines"`
	FDs        int   `json:"fds"`
}

func resources() Resources {
	es, _ := os.ReadDir("/proc/self/fd")
	return Resources{RSS: selfRSS(), Goroutines: runtime.NumGoroutine(), FDs: len(es)}
}

// soakKinds is the mix each worker cycles through.
var soakKinds = []string{"call", "call", "call", "call", "oneway", "stream", "batch", "connect", "call-64KiB", "call"}

// Soak serves an echo daemon in this process and drives it for d with
// mixed traffic from workers goroutines (calls, oneway calls, streams,
// batches, connects and disconnects, larger calls), then closes every
// client and reports the rate, the latency percentiles and whether the
// process's goroutines and descriptors came back to where they started.
func Soak(ctx context.Context, d time.Duration, workers int) (SoakResult, error) {
	var res SoakResult
	dm, err := daemon.New()
	if err != nil {
		return res, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	served := make(chan error, 1)
	go func() { served <- dm.Serve(ctx, ln) }()
	defer func() { _ = dm.Close(); <-served }()
	<-dm.Ready()
	u, err := dm.Register(&echoserver.Server{}, daemon.WithID(echoserver.ID))
	if err != nil {
		return res, err
	}
	// One call first: the transport starts its accept loop on the first
	// connection, and that goroutine stays for the daemon's life.
	if err := soakOp(ctx, nil, u.String(), "connect", nil); err != nil {
		return res, err
	}
	debug.FreeOSMemory()
	res.Start = resources()

	big := make([]byte, 64<<10)
	var ops, errs atomic.Int64
	var errOnce sync.Once
	lat := make([][]time.Duration, workers)
	kinds := make([]map[string]int, workers)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		kinds[w] = map[string]int{}
		wg.Go(func() {
			p, err := proxy.NewURI(u)
			if err != nil {
				errOnce.Do(func() { res.FirstError = err.Error() })
				errs.Add(1)
				return
			}
			defer p.Close()
			for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				kind := soakKinds[i%len(soakKinds)]
				start := time.Now()
				err := soakOp(ctx, p, u.String(), kind, big)
				lat[w] = append(lat[w], time.Since(start))
				kinds[w][kind]++
				ops.Add(1)
				if err != nil {
					errs.Add(1)
					errOnce.Do(func() { res.FirstError = kind + ": " + err.Error() })
				}
			}
		})
	}
	wg.Wait()
	res.Duration = d
	res.Ops, res.Errors = ops.Load(), errs.Load()
	res.OpsPerSec = float64(res.Ops) / d.Seconds()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		res.P50ms, res.P99ms = float64(all[len(all)/2])/1e6, float64(all[len(all)*99/100])/1e6
	}
	res.ByKind = map[string]int{}
	for _, k := range kinds {
		for name, n := range k {
			res.ByKind[name] += n
		}
	}
	// Every client has closed: wait (a bounded while) for the daemon's
	// goroutines and descriptors to go.
	limit := time.Now().Add(10 * time.Second)
	for {
		debug.FreeOSMemory() // a collection, and freed memory back to the OS: RSS is then what is live
		res.End = resources()
		if (res.End.Goroutines <= res.Start.Goroutines && res.End.FDs <= res.Start.FDs) || time.Now().After(limit) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return res, nil
}

func soakOp(ctx context.Context, p *proxy.Proxy, uri, kind string, big []byte) error {
	switch kind {
	case "call":
		_, err := proxy.Call[string](ctx, p, "Echo", "soak")
		return err
	case "call-64KiB":
		b, err := proxy.Call[[]byte](ctx, p, "Echo", big)
		if err == nil && len(b) != len(big) {
			err = fmt.Errorf("echoed %d bytes of %d", len(b), len(big))
		}
		return err
	case "oneway":
		return p.Oneway(ctx, "OnewayEcho", "soak")
	case "stream":
		n := 0
		for _, err := range proxy.Stream[string](ctx, p, "Generator") {
			if err != nil {
				return err
			}
			n++
		}
		if n != 3 {
			return fmt.Errorf("stream of %d items, want 3", n)
		}
		return nil
	case "batch":
		b := p.Batch()
		for range 10 {
			b.Call("Echo", "soak")
		}
		rs, err := b.Run(ctx)
		if err == nil && rs[9].Err != nil {
			err = rs[9].Err
		}
		return err
	case "connect":
		q, err := proxy.New(uri)
		if err != nil {
			return err
		}
		defer q.Close()
		_, err = proxy.Call[string](ctx, q, "Echo", "soak")
		return err
	}
	return fmt.Errorf("unknown kind %q", kind)
}

// selfRSS returns this process's resident memory (0 where /proc is not).
func selfRSS() int64 {
	rss, _, _ := procMem(os.Getpid())
	return rss
}
