package daemon_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/proxy"
)

// Counted is a session object whose Close calls back into its daemon.
type Counted struct {
	d      *daemon.Daemon
	closes *atomic.Int64
}

func (c *Counted) Hello() string { return "hello" }

func (c *Counted) Close() error {
	_ = c.d.Registered() // takes the daemon's lock: must not deadlock
	c.closes.Add(1)
	return nil
}

// TestUnregisterClosesOutsideLock: a session instance's Close that calls
// back into the daemon does not deadlock Unregister (issue 11, item 4).
func TestUnregisterClosesOutsideLock(t *testing.T) {
	d := testutil.Serve(t)
	var closes atomic.Int64
	u, err := d.RegisterFactory(daemon.Session, func() *Counted { return &Counted{d: d, closes: &closes} })
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u)
	if _, err := p.Call(t.Context(), "Hello"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Unregister(u.Object) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Unregister deadlocked on a Close that calls back into the daemon")
	}
	if closes.Load() != 1 {
		t.Fatalf("closes = %d, want 1", closes.Load())
	}
}

// TestEverySessionInstanceClosed: racing first calls on one connection
// make several instances; each is closed, the ones that lost the race too,
// so Close calls equal factory calls (issue 11, item 6).
func TestEverySessionInstanceClosed(t *testing.T) {
	d := testutil.Serve(t)
	var made, closes atomic.Int64
	gate := make(chan struct{})
	u, err := d.RegisterFactory(daemon.Session, func() *Counted {
		made.Add(1)
		<-gate // hold every first call in the factory: they all race
		return &Counted{d: d, closes: &closes}
	})
	if err != nil {
		t.Fatal(err)
	}
	var proxies []*proxy.Proxy
	var wg sync.WaitGroup
	const conns, calls = 4, 8
	for range conns {
		p := newProxy(t, u)
		if err := p.Ping(t.Context()); err != nil { // connect first: one connection per proxy
			t.Fatal(err)
		}
		proxies = append(proxies, p)
		for range calls {
			wg.Go(func() {
				if _, err := p.Call(t.Context(), "Hello"); err != nil {
					t.Error(err)
				}
			})
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the first calls did not all reach the factory",
		func() bool { return made.Load() == conns*calls })
	close(gate)
	wg.Wait()
	for _, p := range proxies {
		p.Close()
	}
	testutil.WaitFor(t, 10*time.Second, "session instances were made and never closed",
		func() bool { return closes.Load() == made.Load() })
}
