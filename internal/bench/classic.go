package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/gopyro/gopyro/classic"
)

// ClassicResult is one classic-mode measurement with its baseline, taken
// in the same run.
type ClassicResult struct {
	Case     string  `json:"case"`
	Unit     string  `json:"unit"`
	Rate     float64 `json:"rate"`
	Baseline string  `json:"baseline,omitempty"`
	BaseRate float64 `json:"baseline_rate,omitempty"`
	Doc      string  `json:"doc"`
}

// Classic measures classic mode: a server in this process whose workers
// run workerCmd. The baseline of the round trips is a plain gopyro call
// (an echo) on the same machine, measured in between.
func Classic(ctx context.Context, workerCmd func() *exec.Cmd, d time.Duration) ([]ClassicResult, error) {
	s := classic.NewServer(classic.Config{WorkerCommand: workerCmd, Warm: 2, Stdout: io.Discard, Stderr: io.Discard})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(sctx, ln) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		return nil, err
	}
	defer func() { stop(); <-errc }()
	addr := s.Addr().String()

	echo, done, err := echoBaseline()
	if err != nil {
		return nil, err
	}
	defer done()
	baseline := func() (float64, error) {
		return rate(ctx, d, func() error { _, err := echo.Call(ctx, "Echo", []byte("0123456789abcdef")); return err })
	}

	c, err := classic.Connect(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []ClassicResult
	add := func(name, unit, doc string, f func() error) error {
		r, err := rate(ctx, d, f)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b, err := baseline()
		if err != nil {
			return err
		}
		out = append(out, ClassicResult{Case: name, Unit: unit, Rate: r, Baseline: "gopyro echo call", BaseRate: b, Doc: doc})
		return nil
	}
	if err := add("classic-execute", "calls/s", "Execute of a small statement, one client, sequential",
		func() error { return c.Execute(ctx, "x := 1\n_ = x") }); err != nil {
		return nil, err
	}
	if err := add("classic-eval", "calls/s", "Eval[int] of 1+1, one client, sequential",
		func() error { _, err := classic.Eval[int](ctx, c, "1+1"); return err }); err != nil {
		return nil, err
	}
	if err := add("classic-connect", "sessions/s", "Connect, Execute of a statement, Close (a warm pool of 2 workers)",
		func() error {
			c, err := classic.Connect(ctx, addr)
			if err != nil {
				return err
			}
			err = c.Execute(ctx, "x := 1\n_ = x")
			if cerr := c.Close(); err == nil {
				err = cerr
			}
			return err
		}); err != nil {
		return nil, err
	}

	// Redirected stdout: lines printed one fmt.Println each, counted as
	// they reach the client's writer.
	var lines atomic.Int64
	if err := c.RedirectStdout(lineCounter{&lines}); err != nil {
		return nil, err
	}
	start := time.Now()
	for time.Since(start) < d {
		if err := c.Execute(ctx, "for i := 0; i < 20000; i++ { fmt.Println(\"hello, line\", i) }"); err != nil {
			return nil, err
		}
	}
	out = append(out, ClassicResult{Case: "classic-stdout", Unit: "lines/s", Rate: float64(lines.Load()) / time.Since(start).Seconds(),
		Doc: "lines a script prints with fmt.Println, redirected to the client (RPyC 5.3 anchor: 1.7k lines/s)"})

	// The process's RSS with 16 idle sessions (their workers apart).
	var clients []*classic.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range 16 {
		c, err := classic.Connect(ctx, addr)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	out = append(out, ClassicResult{Case: "classic-rss-16-sessions", Unit: "MB", Rate: float64(selfRSS()) / 1e6,
		Doc: "RSS of the server process (clients included) with 16 idle sessions open; workers not counted"})
	return out, nil
}

type lineCounter struct{ n *atomic.Int64 }

func (l lineCounter) Write(p []byte) (int, error) {
	k := 0
	for _, b := range p {
		if b == '\n' {
			k++
		}
	}
	l.n.Add(int64(k))
	return len(p), nil
}

// rate runs f for d and returns how many times a second it ran.
func rate(ctx context.Context, d time.Duration, f func() error) (float64, error) {
	if err := f(); err != nil { // warm up
		return 0, err
	}
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := f(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
