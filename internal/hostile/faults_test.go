package hostile

import (
	"context"
	"errors"
	"iter"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/echoserver"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/proxy"
)

// Endless streams numbers until its consumer goes.
type Endless struct{}

func (Endless) Count() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

// A client process killed with SIGKILL mid-call and mid-stream: the
// daemon's calls, connections, streams and goroutines come back to their
// baseline.
func TestClientKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs client processes")
	}
	bin := testutil.Build(t, "github.com/gopyro/gopyro/cmd/gopyro")
	d := testutil.Serve(t, daemon.WithStreamLinger(100*time.Millisecond))
	u, err := d.Register(&echoserver.Server{}, daemon.WithID(echoserver.ID))
	if err != nil {
		t.Fatal(err)
	}
	su, err := d.Register(Endless{}, daemon.WithID("endless"))
	if err != nil {
		t.Fatal(err)
	}
	// The transport's accept loop starts with the first connection.
	if p, err := proxy.NewURI(u); err == nil {
		_, _ = p.Call(t.Context(), "Echo", 1)
		p.Close()
	}
	testutil.WaitFor(t, 5*time.Second, "the first connection to go", func() bool { return d.Stats().Conns == 0 })
	base := runtime.NumGoroutine()

	mid := testutil.Start(t, nil, bin, "call", "--timeout", "0", u.String(), "Slow", "30")
	testutil.WaitFor(t, 10*time.Second, "the call to start", func() bool { return d.Stats().InFlight == 1 })
	stream := testutil.Start(t, nil, bin, "call", "--stream", su.String(), "Count")
	stream.Stdout.Wait(t, func(s string) bool { return s == "100" })
	for _, p := range []*testutil.Process{mid, stream} {
		if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.Exited()
	}
	testutil.WaitFor(t, 10*time.Second, "calls, connections, streams and goroutines to come back", func() bool {
		s := d.Stats()
		return s.InFlight == 0 && s.Conns == 0 && s.StreamsOpen == 0 && s.BytesInFlight == 0 && runtime.NumGoroutine() <= base
	})
}

// A daemon process killed with SIGKILL while a proxy has calls in flight:
// each call fails promptly with a communication error, and once a daemon
// is back on the same address the proxy reconnects.
func TestDaemonKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs daemon processes")
	}
	tg := startTarget(t, "--max-in-flight", "3") // a fourth call is refused: the three are in flight
	p, err := proxy.NewURI(tg.uri)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := proxy.Call[string](t.Context(), p, "Echo", "up"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			_, err := proxy.Call[string](t.Context(), p, "Slow", 30.0)
			errs <- err
		})
	}
	testutil.WaitFor(t, 10*time.Second, "three calls in flight", func() bool {
		_, err := proxy.Call[string](t.Context(), p, "Echo", "probe")
		return errors.Is(err, gopyro.ErrBusy)
	})
	killed := time.Now()
	if err := tg.proc.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	if el := time.Since(killed); el > 2*time.Second {
		t.Errorf("calls failed %v after the daemon died", el)
	}
	for err := range errs {
		if gopyro.CodeOf(err) != gopyro.CodeCommunication {
			t.Errorf("a call in flight when the daemon died: %v (code %v)", err, gopyro.CodeOf(err))
		}
	}
	// A daemon back on the same port: the proxy redials.
	bin := testutil.Build(t, "github.com/gopyro/gopyro/cmd/gopyro")
	testutil.Start(t, nil, bin, "echo", "--port", strconv.Itoa(tg.uri.Port)).Stdout.Wait(t, testutil.Prefix("PYRO:"))
	var last error
	testutil.WaitFor(t, 10*time.Second, "the proxy to reach the new daemon", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, last = proxy.Call[string](ctx, p, "Echo", "back")
		return last == nil || !errors.Is(last, gopyro.ErrCommunication)
	})
	if last != nil {
		t.Fatalf("after the restart: %v", last)
	}
}

// A name server process restarted (SIGKILL, then started again on the
// same port and store) while clients keep resolving through it: its
// registrations persist, and PYRONAME proxies made after the restart
// resolve and call again.
func TestNameServerRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs name server processes")
	}
	bin := testutil.Build(t, "github.com/gopyro/gopyro/cmd/gopyro")
	store := filepath.Join(t.TempDir(), "ns.db")
	ns := testutil.Start(t, nil, bin, "ns", "--port", "0", "--store", store)
	nsURI := ns.Stdout.Wait(t, testutil.Prefix("PYRO:"+gopyro.NameServerID+"@"))
	nsAddr := strings.TrimPrefix(strings.Fields(nsURI)[0], "PYRO:"+gopyro.NameServerID+"@")

	d := testutil.Serve(t)
	u, err := d.Register(&echoserver.Server{}, daemon.WithID(echoserver.ID))
	if err != nil {
		t.Fatal(err)
	}
	nsc, err := nameserver.NewClient("PYRO:" + gopyro.NameServerID + "@" + nsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nsc.Close()
	if err := nsc.Register(t.Context(), "test.echo", u); err != nil {
		t.Fatal(err)
	}

	// Load: goroutines resolving and calling through new PYRONAME proxies.
	stop := make(chan struct{})
	var okCalls, failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, err := proxy.New("PYRONAME:test.echo@" + nsAddr)
				if err == nil {
					ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
					_, err = proxy.Call[string](ctx, p, "Echo", "x")
					cancel()
					p.Close()
				}
				if err != nil {
					failed.Add(1)
				} else {
					okCalls.Add(1)
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	testutil.WaitFor(t, 10*time.Second, "calls through the name server", func() bool { return okCalls.Load() > 20 })

	if err := ns.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-ns.Exited()
	testutil.WaitFor(t, 10*time.Second, "lookups to fail while it is down", func() bool { return failed.Load() > 0 })
	port := nsAddr[strings.LastIndex(nsAddr, ":")+1:]
	testutil.Start(t, nil, bin, "ns", "--port", port, "--store", store).Stdout.Wait(t, testutil.Prefix("PYRO:"))

	before := okCalls.Load()
	testutil.WaitFor(t, 10*time.Second, "PYRONAME calls to work again", func() bool { return okCalls.Load() > before+20 })
	got, err := nsc.Lookup(t.Context(), "test.echo")
	if err != nil || got.String() != u.String() {
		t.Fatalf("after the restart, test.echo = %v, %v; want %v", got, err, u)
	}
}
