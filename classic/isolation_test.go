package classic_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/classic"
	"github.com/gopyro/gopyro/internal/testutil"
)

// alive reports whether process pid exists.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// Each way of losing a worker costs its session only: the client gets
// ErrSessionLost saying why, the worker is gone, another session goes
// on, and a new session opens at once.
func TestIsolation(t *testing.T) {
	cases := []struct {
		name    string
		cfg     classic.Config
		setup   string
		code    string
		timeout time.Duration
		reason  string
		// plainWorker runs gopyro (built without -race) as the worker.
		plainWorker bool
	}{
		{name: "os.Exit", code: "os.Exit(3)", reason: "exited with status 3"},
		{name: "log.Fatal", code: `log.Fatal("bye")`, reason: "exited with status 1"},
		{name: "goroutine panic", code: `go func() { panic("in a goroutine") }()
time.Sleep(10 * time.Second)`, reason: "panic: in a goroutine"},
		{name: "runaway goroutine after a deadline", setup: "go func() { for { } }()",
			code: "time.Sleep(time.Hour)", timeout: 500 * time.Millisecond, reason: "could not be stopped"},
		// The race detector's own allocations make a race-built worker a
		// poor subject: this case runs the gopyro binary as the worker.
		{name: "memory blow-up", cfg: classic.Config{WorkerMemory: 256 << 20}, plainWorker: true,
			code: `var keep [][]byte
for {
	keep = append(keep, bytes.Repeat([]byte{1}, 1<<20))
}`, reason: "ran out of memory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.plainWorker {
				bin := testutil.Build(t, "github.com/gopyro/gopyro/cmd/gopyro")
				tc.cfg.WorkerCommand = func() *exec.Cmd { return exec.Command(bin, "classic", "worker") }
			}
			s, _, _ := serve(t, tc.cfg)
			other := connect(t, s)
			c := connect(t, s)
			if tc.setup != "" {
				if err := c.Execute(ctx(t), tc.setup); err != nil {
					t.Fatal(err)
				}
			}
			cctx := ctx(t)
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				cctx, cancel = context.WithTimeout(cctx, tc.timeout)
				defer cancel()
			}
			err := c.Execute(cctx, tc.code)
			if !errors.Is(err, classic.ErrSessionLost) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v, want ErrSessionLost saying %q", err, tc.reason)
			}
			testutil.WaitFor(t, 10*time.Second, "the worker is gone", func() bool { return !alive(c.PID()) })
			if err := c.Execute(ctx(t), "1"); !errors.Is(err, classic.ErrSessionLost) {
				t.Errorf("a later call: %v, want ErrSessionLost", err)
			}
			if n, err := classic.Eval[int](ctx(t), other, "1 + 1"); err != nil || n != 2 {
				t.Errorf("the other session: %d, %v", n, err)
			}
			fresh := connect(t, s)
			if n, err := classic.Eval[int](ctx(t), fresh, "2 + 2"); err != nil || n != 4 {
				t.Errorf("a new session: %d, %v", n, err)
			}
		})
	}
}

// Interpreted code that runs past its deadline is stopped, and the
// session goes on when nothing of it still runs.
func TestDeadlineStopsLoop(t *testing.T) {
	s, _, _ := serve(t, classic.Config{})
	c := connect(t, s)
	cctx, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
	defer cancel()
	err := c.Execute(cctx, "n := 0\nfor { n++ }")
	if !errors.Is(err, gopyro.ErrTimeout) {
		t.Fatalf("got %v, want a timeout", err)
	}
	if n, err := classic.Eval[int](ctx(t), c, "3 * 3"); err != nil || n != 9 {
		t.Fatalf("after the timeout: %d, %v", n, err)
	}
}

// The server's call timeout applies when the caller set none.
func TestCallTimeout(t *testing.T) {
	s, _, _ := serve(t, classic.Config{CallTimeout: 300 * time.Millisecond})
	c := connect(t, s)
	if err := c.Execute(ctx(t), "for { }"); !errors.Is(err, gopyro.ErrTimeout) {
		t.Fatalf("got %v, want a timeout", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	s, _, _ := serve(t, classic.Config{IdleTimeout: 300 * time.Millisecond})
	c := connect(t, s)
	pid := c.PID()
	testutil.WaitFor(t, 10*time.Second, "the idle session closed", func() bool { return s.Sessions() == 0 })
	testutil.WaitFor(t, 10*time.Second, "the idle worker killed", func() bool { return !alive(pid) })
	if err := c.Execute(ctx(t), "1"); err == nil {
		t.Fatal("a call on an idle-closed session succeeded")
	}
}

func TestSessionLimit(t *testing.T) {
	s, _, _ := serve(t, classic.Config{MaxSessions: 1})
	a := connect(t, s)
	cctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := classic.Connect(cctx, s.Addr().String()); !errors.Is(err, gopyro.ErrBusy) {
		t.Fatalf("second session: %v, want ErrBusy", err)
	}
	pid := a.PID()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the closed session's worker killed", func() bool { return !alive(pid) })
	b := connect(t, s)
	if n, err := classic.Eval[int](ctx(t), b, "5"); err != nil || n != 5 {
		t.Fatalf("after close: %d, %v", n, err)
	}
}
