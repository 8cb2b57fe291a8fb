// Package echoserver is the test object served by "gopyro echo", modelled
// on Pyro's echo server: a remote object to try proxies and tools against.
package echoserver

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"
)

// ID is the object id the echo server is registered under.
const ID = "test.echoserver"

// Server is the echo object. The zero value is ready to use.
type Server struct {
	// Oneway, if set, receives each OnewayEcho argument (tests use it).
	Oneway chan<- any
}

// Echo returns its argument.
func (s *Server) Echo(v any) any { return v }

// Error always fails, with a message a caller can check.
func (s *Server) Error() error {
	return errors.New("this is the generated error from the echoserver")
}

// Slow waits the given number of seconds (or until the call's context
// ends) and returns a message saying so.
func (s *Server) Slow(ctx context.Context, seconds float64) (string, error) {
	t := time.NewTimer(time.Duration(seconds * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return fmt.Sprintf("slept %g seconds", seconds), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// OnewayEcho accepts its argument and returns nothing; it is declared
// oneway, so callers need not wait.
func (s *Server) OnewayEcho(v any) {
	if s.Oneway != nil {
		s.Oneway <- v
	}
}

// Generator streams "one", "two", "three" (read it with proxy.Stream, or
// "gopyro call --stream").
func (s *Server) Generator() iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, w := range []string{"one", "two", "three"} {
			if !yield(w) {
				return
			}
		}
	}
}
