package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gopyro/gopyro"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lineWriter sends the first line written to it on a channel.
type lineWriter struct {
	once  sync.Once
	buf   syncBuffer
	first chan string
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n, err := l.buf.Write(p)
	if s := l.buf.String(); strings.Contains(s, "\n") {
		l.once.Do(func() { l.first <- strings.SplitN(s, "\n", 2)[0] })
	}
	return n, err
}

// startEcho runs "gopyro echo --port 0" in-process and returns its URI.
func startEcho(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out := &lineWriter{first: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"echo", "--port", "0"}, nil, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("echo: %v", err)
		}
	})
	select {
	case uri := <-out.first:
		return uri
	case err := <-done:
		t.Fatalf("echo exited: %v", err)
	}
	return ""
}

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := Run(t.Context(), args, nil, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestEchoAndCall(t *testing.T) {
	uri := startEcho(t)
	if !strings.HasPrefix(uri, "PYRO:test.echoserver@127.0.0.1:") {
		t.Fatalf("uri line = %q", uri)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"echo", `"hi"`}, `"hi"`},
		{[]string{"Echo", `42`}, `42`},
		{[]string{"echo", `[1,2.5,"x",{"k":null}]`}, `[1,2.5,"x",{"k":null}]`},
		{[]string{"slow", `0.001`}, `"slept 0.001 seconds"`},
		{[]string{"oneway_echo", `1`}, ``},
	}
	for _, tt := range tests {
		out, _, err := run(t, append([]string{"call", uri}, tt.args...)...)
		if err != nil || strings.TrimSpace(out) != tt.want {
			t.Errorf("call %v = %q, %v; want %q", tt.args, out, err, tt.want)
		}
	}
	_, _, err := run(t, "call", uri, "error")
	if !errors.Is(err, gopyro.ErrRemote) || !strings.Contains(err.Error(), "generated error") {
		t.Fatalf("error method: %v", err)
	}
	_, _, err = run(t, "call", "--timeout", "50ms", uri, "slow", "60")
	if !errors.Is(err, gopyro.ErrTimeout) {
		t.Fatalf("timeout: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"call", "PYRO:x@127.0.0.1:1"},
		{"call", "nonsense", "m"},
		{"call", "PYRO:x@127.0.0.1:1", "m", "{bad json"},
		{"echo", "--port", "notaport"},
	} {
		_, _, err := run(t, args...)
		if err == nil || ExitCode(err) != 2 {
			t.Errorf("%v: err = %v (exit %d), want a usage error", args, err, ExitCode(err))
		}
	}
	out, _, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "gopyro ") {
		t.Fatalf("version = %q %v", out, err)
	}
}

// TestProcesses builds the real binary and runs "gopyro echo" and
// "gopyro call" as separate processes.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "gopyro")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/gopyro/gopyro/cmd/gopyro")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := exec.CommandContext(t.Context(), bin, "echo", "--port", "0")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("no URI line; stderr: %s", stderr.String())
	}
	uri := sc.Text()
	go io.Copy(io.Discard, stdout)

	out, err := exec.CommandContext(t.Context(), bin, "call", uri, "echo", `"hi"`).Output()
	if err != nil || strings.TrimSpace(string(out)) != `"hi"` {
		t.Fatalf("call echo = %q %v", out, err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "call", uri, "error")
	var callErr bytes.Buffer
	cmd.Stderr = &callErr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(callErr.String(), "generated error") {
		t.Fatalf("call error: %v, stderr %q", err, callErr.String())
	}
	// SIGINT stops the server cleanly.
	if err := srv.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("echo exit after SIGINT: %v; stderr: %s", err, stderr.String())
	}
}
