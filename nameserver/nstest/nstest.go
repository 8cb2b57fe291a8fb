// Package nstest starts name servers for tests, in the manner of
// net/http/httptest.
package nstest

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/gopyro/gopyro/nameserver"
)

// Start serves an in-memory name server on 127.0.0.1:0 until the test ends
// and returns a client for it. Its address is Client.URI().Address().
func Start(tb testing.TB) *nameserver.Client {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	// Quiet: its goroutines may log after the test ended, where the
	// test's log would panic.
	s, err := nameserver.New(nameserver.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	errc := make(chan error, 1)
	// Not tb.Context(): that is cancelled before cleanups run, and other
	// cleanups may still talk to the name server.
	go func() { errc <- s.Serve(context.Background(), ln) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		tb.Fatalf("name server: %v", err)
	}
	c, err := nameserver.NewClient(s.URI().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = c.Close()
		_ = s.Close()
		if err := <-errc; err != nil {
			tb.Errorf("name server: %v", err)
		}
	})
	return c
}
