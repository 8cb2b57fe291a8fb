// Package echoserver is the test object served by "gopyro echo", a mirror
// of Pyro's own echo server (Pyro4.test.echoserver, Pyro5.utils.echoserver)
// that Pyro users reach for first when testing: the same object id, the
// same methods and behaviour, and the verbose attribute, so that Pyro's
// Python clients and gopyro's Go clients can try proxies and tools
// against it.
package echoserver

import (
	"context"
	"fmt"
	"io"
	"iter"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopyro/gopyro"
)

// ID is the object id the echo server is registered under, as Pyro's.
const ID = "test.echoserver"

// SlowDelay is how long Slow (without an argument) and OnewaySlow wait, as
// Pyro's echo server does.
const SlowDelay = 5 * time.Second

// MaxSlow bounds Slow's argument.
const MaxSlow = 24 * time.Hour

// ErrEcho is what Error raises: a Python client sees a ValueError with
// the message of Pyro4's echo server.
var ErrEcho = gopyro.NewError(gopyro.CodeRemote, "builtins.ValueError", "expected error from echoserver error() method")

// Server is the echo object. The zero value is ready to use.
type Server struct {
	// Oneway, if set, receives each OnewayEcho argument (tests use it).
	Oneway chan<- any
	// Out, if set, is where a verbose server prints the calls it gets.
	Out io.Writer

	verbose  atomic.Bool
	outMu    sync.Mutex // serialises the lines written to Out
	mu       sync.Mutex
	shutdown chan struct{} // closed by Shutdown; made on first use
}

// Echo returns its argument.
func (s *Server) Echo(v any) any {
	s.logf("echo: %v", v)
	return v
}

// Error always fails with ErrEcho (a ValueError for Python clients).
func (s *Server) Error() error {
	s.logf("error: generating exception")
	return ErrEcho
}

// ErrorWithText always fails with a ValueError whose message is "the
// message of the error".
func (s *Server) ErrorWithText() error {
	s.logf("error: generating exception")
	return gopyro.NewError(gopyro.CodeRemote, "builtins.ValueError", "the message of the error")
}

// Slow waits SlowDelay and answers "Finally, an answer!", as Pyro's does;
// with an argument it waits that many seconds (at most MaxSlow) and says
// so. The wait ends early when the call's context does.
func (s *Server) Slow(ctx context.Context, seconds ...float64) (string, error) {
	d, answer := SlowDelay, "Finally, an answer!"
	switch len(seconds) {
	case 0:
	case 1:
		if !(seconds[0] >= 0 && seconds[0] <= MaxSlow.Seconds()) {
			return "", gopyro.NewError(gopyro.CodeArgument, "", fmt.Sprintf("slow(seconds): want between 0 and %g seconds, got %g", MaxSlow.Seconds(), seconds[0]))
		}
		d, answer = time.Duration(seconds[0]*float64(time.Second)), fmt.Sprintf("slept %g seconds", seconds[0])
	default:
		return "", gopyro.NewError(gopyro.CodeArgument, "", fmt.Sprintf("slow takes at most 1 argument, got %d", len(seconds)))
	}
	s.logf("slow: waiting %v...", d)
	if err := wait(ctx, d); err != nil {
		return "", err
	}
	s.logf("slow: returning result")
	return answer, nil
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OnewayEcho accepts its argument and returns nothing; it is declared
// oneway, so callers do not wait.
func (s *Server) OnewayEcho(v any) {
	s.logf("oneway_echo: %v", v)
	if s.Oneway != nil {
		s.Oneway <- v
	}
}

// OnewaySlow waits SlowDelay; it is declared oneway, so callers do not
// wait for it.
func (s *Server) OnewaySlow(ctx context.Context) {
	s.logf("oneway_slow: waiting a bit...")
	if wait(ctx, SlowDelay) == nil {
		s.logf("oneway_slow: returning result")
	}
}

// Generator streams "one", "two", "three" (read it with proxy.Stream, or
// "gopyro call --stream"; a Python generator for Python clients).
func (s *Server) Generator() iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, w := range []string{"one", "two", "three"} {
			if !yield(w) {
				return
			}
		}
	}
}

// Nan returns a float NaN (named for Python's nan()).
func (s *Server) Nan() float64 { return math.NaN() }

// Inf returns positive infinity.
func (s *Server) Inf() float64 { return math.Inf(1) }

// Shutdown asks the server to stop: Done is closed.
func (s *Server) Shutdown() {
	s.logf("shutting down")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done()
	select {
	case <-s.shutdown:
	default:
		close(s.shutdown)
	}
}

// Done is closed once Shutdown was called.
func (s *Server) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done()
}

// done returns the shutdown channel, made on first use. Called with s.mu
// held.
func (s *Server) done() chan struct{} {
	if s.shutdown == nil {
		s.shutdown = make(chan struct{})
	}
	return s.shutdown
}

// SetVerbose turns the printing of calls on or off; Python clients set
// the verbose attribute.
func (s *Server) SetVerbose(on bool) { s.verbose.Store(on) }

// PyroAttributes lists the attribute Python clients see: verbose.
func (s *Server) PyroAttributes() []string { return []string{"verbose"} }

// PyroGetAttr reads verbose.
func (s *Server) PyroGetAttr(name string) (any, error) { return s.verbose.Load(), nil }

// PyroSetAttr sets verbose (to Python's truth of the value, as Pyro's
// bool(onoff)).
func (s *Server) PyroSetAttr(name string, value any) error {
	s.verbose.Store(truthy(value))
	return nil
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

func (s *Server) logf(format string, args ...any) {
	if s.Out != nil && s.verbose.Load() {
		s.outMu.Lock()
		defer s.outMu.Unlock()
		fmt.Fprintf(s.Out, "%s - %s\n", time.Now().Format(time.ANSIC), fmt.Sprintf(format, args...))
	}
}
