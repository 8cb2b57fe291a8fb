package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopyro/gopyro/internal/testutil"
)

// classicAddr returns the host:port of the URI a classic server printed.
func classicAddr(t *testing.T, first string) string {
	t.Helper()
	m := regexp.MustCompile(`^PYRO:gopyro\.classic@(127\.0\.0\.1:\d+)$`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("first line %q is not the classic URI", first)
	}
	return m[1]
}

// workersOf returns the pids of the children of pid.
func workersOf(pid int) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		f := strings.Fields(rest)
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			n, _ := strconv.Atoi(strings.Fields(string(b))[0])
			out = append(out, n)
		}
	}
	return out
}

func TestClassicProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	bin := buildBinary(t)
	srv, first, _, _ := startProcess(t, bin, "classic", "--port", "0", "--warm", "1")
	addr := classicAddr(t, first)

	out := testutil.Run(t, nil, bin, "classic", "exec", "--addr", addr, `fmt.Println("hi here")`)
	if out != "hi here\n" {
		t.Errorf("exec printed %q", out)
	}
	out = testutil.Run(t, strings.NewReader("x := 6\nfmt.Println(x * 7)\n"), bin, "classic", "exec", "--addr", addr, "-")
	if out != "42\n" {
		t.Errorf("exec - printed %q", out)
	}
	if out := testutil.Run(t, nil, bin, "classic", "eval", "--addr", addr, `map[string]int{"a": 6*7}`); out != "{\"a\":42}\n" {
		t.Errorf("eval printed %q", out)
	}
	shell := testutil.Run(t, strings.NewReader("func sq(n int) int {\n\treturn n * n\n}\nsq(9)\nfmt.Println(\"hi\")\nundefinedThing\nexit\n"),
		bin, "classic", "shell", "--addr", addr)
	for _, want := range []string{"81\n", "hi\n", "error: ", "undefined: undefinedThing"} {
		if !strings.Contains(shell, want) {
			t.Errorf("shell output lacks %q:\n%s", want, shell)
		}
	}

	// A remote error: exit status 1 and the reason on stderr.
	cmd := exec.Command(bin, "classic", "exec", "--addr", addr, "os.Exit(4)")
	b, err := cmd.CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.ExitCode() != 1 || !strings.Contains(string(b), "exited with status 4") {
		t.Errorf("exec os.Exit(4): %v, %s", err, b)
	}

	// No worker outlives a server killed with SIGKILL.
	testutil.WaitFor(t, 20*time.Second, "a warm worker", func() bool { return len(workersOf(srv.Process.Pid)) > 0 })
	workers := workersOf(srv.Process.Pid)
	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "the workers gone after kill -9 of the server", func() bool {
		for _, w := range workers {
			if syscall.Kill(w, 0) == nil {
				if b, _ := os.ReadFile("/proc/" + strconv.Itoa(w) + "/stat"); strings.Contains(string(b), ") Z ") {
					continue // a zombie: dead
				}
				return false
			}
		}
		return true
	})
}

func TestClassicRefusesRemoteBind(t *testing.T) {
	for _, args := range [][]string{
		{"classic", "--host", "0.0.0.0", "--port", "0"},
		{"classic", "--host", "0.0.0.0", "--port", "0", "--allow-remote"},
	} {
		_, stderr, err := run(t, args...)
		if ExitCode(err) != 2 || !strings.Contains(err.Error()+stderr, "remote code execution") {
			t.Errorf("%v: %v %s, want a usage error explaining the refusal", args, err, stderr)
		}
	}
	if _, _, err := run(t, "classic", "--worker-memory", "lots"); ExitCode(err) != 2 {
		t.Errorf("bad --worker-memory: %v", err)
	}
}

func TestClassicDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	out := testutil.Run(t, nil, buildBinary(t), "demo", "classic")
	want := []string{`^\[server\] classic server on 127\.0\.0\.1:\d+$`, `^\[server\] hi python cookbook$`,
		`^\[client\] hi here$`, `^\[client\] Add\(40, 2\) = 42, computed in worker process \d+$`}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("demo printed:\n%s", out)
	}
	for i, w := range want {
		if !regexp.MustCompile(w).MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i+1, lines[i], w)
		}
	}
}

// The classic server serves on a unix socket too, and its clients reach it
// there (issue 15, item 3).
func TestClassicUnixSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	bin := buildBinary(t) // the workers are this binary
	sock := "./u:" + filepath.Join(t.TempDir(), "classic.sock")
	_, uri, _, _ := startProcess(t, bin, "classic", "--host", sock, "--warm", "0")
	if !strings.HasSuffix(uri, "@"+sock) {
		t.Fatalf("classic URI = %s", uri)
	}
	if out := testutil.Run(t, nil, bin, "classic", "eval", "--addr", sock, "6*7"); strings.TrimSpace(out) != "42" {
		t.Fatalf("eval over the socket = %q", out)
	}
}
