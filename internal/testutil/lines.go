package testutil

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// Lines is an io.Writer, safe for concurrent use, that keeps what is
// written to it as lines and lets a test wait for a line to appear.
type Lines struct {
	mu      sync.Mutex
	partial string
	lines   []string
	changed chan struct{}
}

// Write implements io.Writer.
func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.partial + string(p)
	parts := strings.Split(s, "\n")
	l.lines = append(l.lines, parts[:len(parts)-1]...)
	l.partial = parts[len(parts)-1]
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	return len(p), nil
}

// All returns the complete lines written so far, and the unterminated rest
// as a last line when there is one.
func (l *Lines) All() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string(nil), l.lines...)
	if l.partial != "" {
		out = append(out, l.partial)
	}
	return out
}

// String returns everything written.
func (l *Lines) String() string {
	return strings.Join(l.All(), "\n")
}

// Wait returns the first complete line for which match is true, waiting
// up to a minute (or the test's end) for it to be written.
func (l *Lines) Wait(tb testing.TB, match func(string) bool) string {
	tb.Helper()
	s, _ := l.WaitUnless(tb, match, nil)
	return s
}

// WaitUnless is Wait that gives up, returning false, when stop is closed
// first (the process writing the lines exited, say).
func (l *Lines) WaitUnless(tb testing.TB, match func(string) bool, stop <-chan struct{}) (string, bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	for {
		l.mu.Lock()
		for _, s := range l.lines {
			if match(s) {
				l.mu.Unlock()
				return s, true
			}
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-stop:
			return "", false
		case <-ctx.Done():
			tb.Fatalf("no matching line after %v; got:\n%s", time.Minute, l.String())
			return "", false
		}
	}
}

// Prefix matches lines starting with p.
func Prefix(p string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, p) }
}
