// Package testutil holds helpers shared by gopyro's tests.
package testutil

import (
	"net"
	"testing"
	"time"

	"github.com/gopyro/gopyro/daemon"
)

// Serve starts a daemon on 127.0.0.1:0 and stops it when the test ends,
// failing the test if Serve returned an error.
func Serve(tb testing.TB, opts ...daemon.Option) *daemon.Daemon {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ServeOn(tb, ln, opts...)
}

// ServeOn starts a daemon on ln and stops it when the test ends.
func ServeOn(tb testing.TB, ln net.Listener, opts ...daemon.Option) *daemon.Daemon {
	tb.Helper()
	d, err := daemon.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- d.Serve(tb.Context(), ln) }()
	<-d.Ready()
	tb.Cleanup(func() {
		_ = d.Close()
		if err := <-errc; err != nil {
			tb.Errorf("daemon.Serve: %v", err)
		}
	})
	return d
}

// WaitFor polls cond until it holds, failing the test with what if it
// does not within limit. It is for conditions no event signals (counts
// kept by the code under test); polling backs off from 1ms to 50ms.
func WaitFor(tb testing.TB, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s", limit, what)
		}
		time.Sleep(pause)
	}
}
