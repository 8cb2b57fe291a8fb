// Package testutil holds helpers shared by gopyro's tests.
package testutil

import (
	"net"
	"testing"

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
