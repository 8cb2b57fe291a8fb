package testutil

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// Build compiles the main package pkg (an import path) once per test
// binary and returns the executable's path. The directory is removed by
// [Cleanup], which a TestMain that builds should call.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "gopyro-test-bin")
		if err != nil {
			tb.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, fmt.Sprintf("bin%d-%s", len(built), filepath.Base(pkg)))
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// Cleanup removes what Build made.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
		buildDir, built = "", map[string]string{}
	}
}

// Process is a child process started by [Start].
type Process struct {
	Cmd    *exec.Cmd
	Stdout Lines
	Stderr Lines
	done   chan struct{}
	err    error
}

// Start runs bin with args. stdin may be nil. When the test ends the
// process gets an interrupt, then is killed if it has not exited within
// ten seconds.
func Start(tb testing.TB, stdin io.Reader, bin string, args ...string) *Process {
	tb.Helper()
	p := &Process{Cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.Cmd.Stdin = stdin
	p.Cmd.Stdout = &p.Stdout
	p.Cmd.Stderr = &p.Stderr
	if err := p.Cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() { p.Stop() })
	return p
}

// Stop interrupts the process and waits for it to exit (killing it after
// ten seconds), and returns how it exited.
func (p *Process) Stop() error {
	_ = p.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// Wait waits for the process to exit and returns how it exited.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Run runs bin with args and stdin to completion and returns its stdout,
// failing the test (with stderr) if it did not exit 0.
func Run(tb testing.TB, stdin io.Reader, bin string, args ...string) string {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(tb.Context(), bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %v: %v\nstderr: %s", filepath.Base(bin), args, err, stderr.String())
	}
	return stdout.String()
}
