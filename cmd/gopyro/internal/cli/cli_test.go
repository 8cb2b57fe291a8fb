package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/examples/interop"
	"github.com/gopyro/gopyro/internal/bench"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver/nstest"
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
	if out, _, err := run(t, "call", "--stream", uri, "generator"); err != nil || out != "\"one\"\n\"two\"\n\"three\"\n" {
		t.Errorf("stream: %q, %v", out, err)
	}
	if _, _, err := run(t, "call", uri, "generator"); err == nil || !strings.Contains(err.Error(), "proxy.Stream") {
		t.Errorf("stream without --stream: %v", err)
	}
	_, _, err := run(t, "call", uri, "error")
	if !errors.Is(err, gopyro.ErrRemote) || !strings.Contains(err.Error(), "builtins.ValueError: expected error from echoserver error() method") {
		t.Fatalf("error method: %v", err)
	}
	_, _, err = run(t, "call", "--timeout", "50ms", uri, "slow", "60")
	if !errors.Is(err, gopyro.ErrTimeout) {
		t.Fatalf("timeout: %v", err)
	}
	// A wait beyond a day is refused, not overflowed into none (issue 15, 14).
	if _, _, err = run(t, "call", uri, "slow", "1e10"); !errors.Is(err, gopyro.ErrArgument) || !strings.Contains(err.Error(), "want between 0 and 86400 seconds") {
		t.Fatalf("slow 1e10: %v", err)
	}
}

// gopyro call gives up on a silent peer: a finite timeout by default.
func TestCallSilentPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts, reads, never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); _ = c.Close() }()
		}
	}()
	_, _, err = run(t, "call", "--timeout", "200ms", "PYRO:x@"+ln.Addr().String(), "m")
	if !errors.Is(err, gopyro.ErrTimeout) {
		t.Fatalf("a silent peer: %v", err)
	}
	help, _, err := run(t, "call", "--help")
	if err != nil || defaultCallTimeout <= 0 || !strings.Contains(help, "(default "+defaultCallTimeout.String()+")") {
		t.Fatalf("call's default timeout: %v\n%s", err, help)
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
	bin := buildBinary(t)
	srv, uri, exited, stderr := startProcess(t, bin, "echo", "--port", "0")

	out, err := exec.CommandContext(t.Context(), bin, "call", uri, "echo", `"hi"`).Output()
	if err != nil || strings.TrimSpace(string(out)) != `"hi"` {
		t.Fatalf("call echo = %q %v", out, err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "call", uri, "error")
	var callErr bytes.Buffer
	cmd.Stderr = &callErr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(callErr.String(), "expected error from echoserver") {
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

var (
	buildOnce sync.Once
	binDir    string // removed by TestMain
	binPath   string
	buildErr  error
)

// buildBinary builds the gopyro binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gopyro-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gopyro")
		binDir = dir
		out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", binPath, "github.com/gopyro/gopyro/cmd/gopyro").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startProcess starts bin with args and returns it with the first line of
// its stdout. The process is killed when the test ends.
func startProcess(t *testing.T, bin string, args ...string) (*exec.Cmd, string, <-chan error, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("%v: no first line; stderr: %s", args, stderr.String())
	}
	first := sc.Text()
	go io.Copy(io.Discard, stdout)
	return cmd, first, exited, stderr
}

func TestNameServerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	bin := buildBinary(t)
	store := filepath.Join(t.TempDir(), "ns.db")
	ns, nsURI, exited, _ := startProcess(t, bin, "ns", "--port", "0", "--store", store)
	addr := strings.TrimPrefix(nsURI, "PYRO:Pyro.NameServer@")
	_, echoURI, _, _ := startProcess(t, bin, "echo", "--port", "0")

	nsc := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"nsc", "--ns", addr}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("nsc %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	nsc("register", "test.echo", echoURI, "--meta", "echo,test")
	// kill -9 right after the register call returned: it must persist.
	if err := ns.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	_, nsURI2, _, _ := startProcess(t, bin, "ns", "--port", "0", "--store", store)
	addr = strings.TrimPrefix(nsURI2, "PYRO:Pyro.NameServer@")
	if got := strings.TrimSpace(nsc("lookup", "test.echo")); got != echoURI {
		t.Fatalf("after kill -9: lookup = %q, want %q", got, echoURI)
	}
	if got := nsc("list", "test."); !strings.Contains(got, "test.echo") || !strings.Contains(got, "[echo,test]") {
		t.Fatalf("list = %q", got)
	}
	if got := nsc("--json", "yplookup", "--all", "echo"); !strings.Contains(got, `"uri": "`+echoURI+`"`) {
		t.Fatalf("yplookup json = %q", got)
	}
	out, err := exec.Command(bin, "call", "--ns", addr, "PYRONAME:test.echo", "echo", `"via name"`).Output()
	if err != nil || strings.TrimSpace(string(out)) != `"via name"` {
		t.Fatalf("call PYRONAME = %q %v", out, err)
	}
	out, err = exec.Command(bin, "call", "PYROMETA:echo,test@"+addr, "echo", `1`).Output()
	if err != nil || strings.TrimSpace(string(out)) != `1` {
		t.Fatalf("call PYROMETA = %q %v", out, err)
	}
	if got := nsc("remove", "--prefix", "test."); got != "removed 1\n" {
		t.Fatalf("remove = %q", got)
	}
	cmd := exec.Command(bin, "nsc", "--ns", addr, "lookup", "test.echo")
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "unknown name: test.echo") {
		t.Fatalf("lookup removed name: %v %s", err, msg)
	}
	// A second name server on the same store is refused, saying why.
	msg, err = exec.Command(bin, "ns", "--port", "0", "--store", store).CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "locked") || !strings.Contains(string(msg), store) {
		t.Fatalf("second ns on a locked store: %v %s", err, msg)
	}
	// A corrupt store is refused, never silently replaced.
	bad := filepath.Join(t.TempDir(), "bad.db")
	os.WriteFile(bad, []byte(strings.Repeat("garbage!", 2000)), 0o600)
	msg, err = exec.Command(bin, "ns", "--port", "0", "--store", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "corrupt") {
		t.Fatalf("corrupt store: %v %s", err, msg)
	}
}

func TestDemo(t *testing.T) {
	want := map[string][]string{
		"greeting": {
			"[ns] name server PYRO:Pyro.NameServer@127.0.0.1:",
			"[server] Ready. Object uri = PYRO:obj_",
			"[client] What is your name? Ada",
			"[client] Hi welcome Ada",
		},
		"chain": {
			"[ns] name server PYRO:Pyro.NameServer@127.0.0.1:",
			"[server_1] server_1 started",
			"[server_2] server_2 started",
			"[server_3] server_3 started",
			"[server_1] 1 forwarding the message to the object 2",
			"[server_2] 2 forwarding the message to the object 3",
			"[server_3] 3 forwarding the message to the object 1",
			"[server_1] Back at 1; the chain is closed!",
			"[client] Result=['passed on from 1', 'passed on from 2', 'passed on from 3', 'complete at 1']",
		},
		"shop": {
			"[ns] name server PYRO:Pyro.NameServer@127.0.0.1:",
			"[server] Registered names with prefix example.shop.: {'example.shop.Shop': 'PYRO:obj_",
			"[client] *** Rashmi is doing shopping with BuyAnythingOnline:",
			"[client] Log on",
			"[client] Deposit money 100",
			"[client] balance=100.00",
			"[client] Rashmi is buying a book for 37$",
			"[client] Log out",
			"[server] logout Rashmi",
			"[client]",
			"[client] *** Meeta is doing shopping with BuyAnythingOnline:",
			"[client] Log on",
			"[client] Deposit money 50",
			"[client] balance=50.00",
			"[client] Deposit money 50",
			"[client] balance=100.00",
			"[client] Log out",
			"[server] logout Meeta",
			"[client]",
			"[client] The accounts in the BuyAnythingOnline:",
			"[client]  Meeta : 100.00",
			"[client]  Rashmi : 63.00",
		},
	}
	for scenario, lines := range want {
		t.Run(scenario, func(t *testing.T) {
			args := []string{"demo", scenario}
			if scenario == "greeting" {
				args = append(args, "--name", "Ada")
			}
			out, _, err := run(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(got) != len(lines) {
				t.Fatalf("got %d lines, want %d:\n%s", len(got), len(lines), out)
			}
			for i := range lines {
				// Lines ending in a URI's prefix are matched by prefix.
				if got[i] != lines[i] && !(strings.HasSuffix(lines[i], ":") || strings.HasSuffix(lines[i], "obj_")) || !strings.HasPrefix(got[i], lines[i]) {
					t.Errorf("line %d = %q, want %q", i+1, got[i], lines[i])
				}
			}
		})
	}
	if _, _, err := run(t, "demo", "nope"); ExitCode(err) != 2 {
		t.Fatalf("unknown scenario: %v", err)
	}
}

func TestBench(t *testing.T) {
	out, _, err := run(t, "bench", "--duration", "20ms", "--case", "small,oneway", "--no-rss", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Results []struct {
			Case    string
			Systems map[string]struct{ Value float64 }
			Ratios  map[string]float64
		}
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(report.Results) != 2 || report.Results[0].Case != "small" || report.Results[1].Case != "oneway" {
		t.Fatalf("results: %+v", report.Results)
	}
	small := report.Results[0]
	for _, sys := range []string{"gopyro", "rpcx", "net/rpc", "tcp"} {
		if small.Systems[sys].Value <= 0 {
			t.Errorf("small/%s = %v", sys, small.Systems[sys].Value)
		}
	}
	if _, ok := report.Results[1].Systems["net/rpc"]; ok || small.Ratios["rpcx"] <= 0 {
		t.Errorf("oneway has net/rpc, or no ratio: %+v", report.Results)
	}
	if _, _, err := run(t, "bench", "--case", "nope"); ExitCode(err) != 2 {
		t.Fatalf("unknown case: %v", err)
	}
}

func TestBenchDaemonRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	r, err := bench.DaemonRSS(t.Context(), buildBinary(t), 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Idle <= 0 || r.Peak < r.Idle || r.After <= 0 {
		t.Fatalf("rss = %+v", r)
	}
}

// TestServerTimeoutFlags: every server's --help gives the connection
// timeouts and their defaults (issue 11, item 1).
func TestServerTimeoutFlags(t *testing.T) {
	for _, cmd := range []string{"echo", "ns"} {
		out, _, err := run(t, cmd, "--help")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"--handshake-timeout duration", "(default 10s)", "--frame-timeout duration", "(default 30s)",
			"--idle-timeout duration", "(default 5m0s)", "--write-timeout duration"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s --help lacks %q:\n%s", cmd, want, out)
			}
		}
	}
}

// An invalid GOPYRO_NS_PORT is reported, not replaced by the default name
// server (issue 15 item 10).
func TestBadNSPortEnv(t *testing.T) {
	t.Setenv("GOPYRO_NS_PORT", "70000")
	for _, args := range [][]string{{"nsc", "list"}, {"call", "PYRONAME:x", "m"}} {
		_, _, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), `GOPYRO_NS_PORT="70000" is not a port`) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestDemoInterop runs the mixed Python/Go demo when a Python with Pyro4
// exists, and checks the lines that prove each direction.
func TestDemoInterop(t *testing.T) {
	if _, err := interop.FindPython(t.Context()); err != nil {
		t.Skip(err)
	}
	out, _, err := run(t, "demo", "interop")
	if err != nil {
		t.Fatal(err, out)
	}
	for _, line := range []string{
		"[python_client] Hi welcome Ada\n",
		"[python_client]  Rashmi : 63.00\n",
		"[python_server_2] I'm 2, passing to 3\n",
		"[python_client] Result=['passed on from 1', 'passed on from 2', 'passed on from 3', 'complete at 1']\n",
		"[go_client] generator: [one two three]\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("no line %q in:\n%s", line, out)
		}
	}
	t.Setenv("GOPYRO_PYTHON", "/nonexistent/python3")
	if _, _, err := run(t, "demo", "interop"); ExitCode(err) != 1 || !strings.Contains(err.Error(), "apt-get install python3-pyro4") {
		t.Errorf("without Python: %v (exit %d)", err, ExitCode(err))
	}
}

// TestEchoPython: a Python Pyro4 client uses gopyro echo as it uses
// Pyro's echo server, found through the name server (--naming): the
// methods, the verbose attribute, oneway_slow not waited for, shutdown.
func TestEchoPython(t *testing.T) {
	py, err := interop.FindPython(t.Context())
	if err != nil {
		t.Skip(err)
	}
	ns := nstest.Start(t)
	var out testutil.Lines
	done := make(chan error, 1)
	go func() {
		done <- Run(t.Context(), []string{"echo", "--naming", "--ns", ns.URI().Address()}, nil, &out, io.Discard)
	}()
	uri := out.Wait(t, testutil.Prefix("PYRO:"))
	if u, err := ns.Lookup(t.Context(), "test.echoserver"); err != nil || u.String() != uri {
		t.Fatalf("registered as %v, %v; serving %s", u, err, uri)
	}
	script := `
import sys, time, Pyro4
e = Pyro4.Proxy("PYRONAME:test.echoserver@" + sys.argv[1])
print(e.echo([1, "x", None]))
try:
    e.error()
except ValueError as x:
    print("ValueError:", x)
print(list(e.generator()))
print("verbose", e.verbose)
e.verbose = True
print("verbose", e.verbose)
e.echo("loud")
t = time.time()
e.oneway_slow()
print("oneway_slow waited", time.time() - t > 4)
print(e.nan(), e.inf())
print(e.slow(0.01))
e.shutdown()
`
	cmd := exec.CommandContext(t.Context(), py, "-c", script, ns.URI().Address())
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, b)
	}
	want := "[1, 'x', None]\nValueError: expected error from echoserver error() method\n['one', 'two', 'three']\n" +
		"verbose False\nverbose True\noneway_slow waited False\nnan inf\nslept 0.01 seconds\n"
	if string(b) != want {
		t.Errorf("python printed:\n%s\nwant:\n%s", b, want)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("echo after shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("echo still running after shutdown()")
	}
	if !strings.Contains(out.String(), " - echo: loud") || strings.Contains(out.String(), "echo: [1") {
		t.Errorf("verbose output:\n%s", out.String())
	}
	if _, err := ns.Lookup(t.Context(), "test.echoserver"); !errors.Is(err, gopyro.ErrNotFound) {
		t.Errorf("after exit the name is still registered: %v", err)
	}
}

// startServer runs a server command in-process until the test ends and
// returns the URI it prints first.
func startServer(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out testutil.Lines
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- Run(ctx, args, nil, &out, io.Discard); close(exited) }()
	t.Cleanup(func() { cancel(); <-exited })
	uri, ok := out.WaitUnless(t, testutil.Prefix("PYRO:"), exited)
	if !ok {
		t.Fatalf("%v exited before it served: %v", args, <-done)
	}
	return uri
}

// Every command that talks to a server takes --token, or $GOPYRO_TOKEN;
// a refusal is reported as one, not as "no name server answered" (issue
// 15, items 1 and 25).
func TestTokenEverywhere(t *testing.T) {
	nsURI := startServer(t, "ns", "--memory", "--port", "0", "--token", "s3")
	addr := strings.TrimPrefix(nsURI, "PYRO:Pyro.NameServer@")
	_, _, err := run(t, "nsc", "--ns", addr, "list")
	if !errors.Is(err, gopyro.ErrSecurity) || !strings.Contains(err.Error(), "refused this client's token") || ExitCode(err) != 1 {
		t.Fatalf("nsc without the token: %v (exit %d)", err, ExitCode(err))
	}
	if out, _, err := run(t, "nsc", "--ns", addr, "--token", "s3", "list"); err != nil || !strings.Contains(out, "Pyro.NameServer") {
		t.Fatalf("nsc --token: %q, %v", out, err)
	}
	t.Setenv("GOPYRO_TOKEN", "s3")
	if out, _, err := run(t, "nsc", "--ns", addr, "list"); err != nil || !strings.Contains(out, "Pyro.NameServer") {
		t.Fatalf("nsc with GOPYRO_TOKEN: %q, %v", out, err)
	}
	// echo takes it from the environment too, and so does call.
	uri := startServer(t, "echo")
	if out, _, err := run(t, "call", uri, "echo", "1"); err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("call with GOPYRO_TOKEN: %q, %v", out, err)
	}
	if _, _, err := run(t, "call", "--token", "wrong", uri, "echo", "1"); !errors.Is(err, gopyro.ErrSecurity) {
		t.Fatalf("call with a wrong token: %v", err)
	}
	// The help names the variable, never its value.
	t.Setenv("GOPYRO_TOKEN", "topsecret")
	if out, _, _ := run(t, "nsc", "--help"); !strings.Contains(out, "$GOPYRO_TOKEN") || strings.Contains(out, "topsecret") {
		t.Fatalf("help:\n%s", out)
	}
	// A name server that is not there is unreachable, not "not found".
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	nowhere := ln.Addr().String()
	ln.Close()
	if _, _, err := run(t, "nsc", "--ns", nowhere, "list"); !errors.Is(err, gopyro.ErrCommunication) || !strings.Contains(err.Error(), "no name server answered") {
		t.Fatalf("nsc nowhere: %v", err)
	}
}

// gopyro version names the module version, the commit and the Go version
// (issue 15, item 19).
func TestVersionBuildInfo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	out, err := exec.Command(buildBinary(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "gopyro ") || !strings.Contains(string(out), runtime.Version()) {
		t.Fatalf("version = %q", out)
	}
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("no git here to compare the commit with: %v", err)
	}
	if want := "commit " + strings.TrimSpace(string(rev))[:12]; !strings.Contains(string(out), want) {
		t.Fatalf("version = %q, want it to hold %q", out, want)
	}
}

// Arguments after the method are arguments, even "-1" (issue 15, item 9);
// nsc remove says why nothing was removed (item 13).
func TestCallNegativeAndRemoveNothing(t *testing.T) {
	uri := startEcho(t)
	if out, _, err := run(t, "call", uri, "echo", "-1"); err != nil || strings.TrimSpace(out) != "-1" {
		t.Fatalf("call echo -1 = %q, %v", out, err)
	}
	if _, _, err := run(t, "call", uri, "slow", "-1"); !errors.Is(err, gopyro.ErrArgument) {
		t.Fatalf("call slow -1: %v", err)
	}
	nsURI := startServer(t, "ns", "--memory", "--port", "0")
	addr := strings.TrimPrefix(nsURI, "PYRO:Pyro.NameServer@")
	if _, _, err := run(t, "nsc", "--ns", addr, "remove", "no.such"); !errors.Is(err, gopyro.ErrNotFound) || ExitCode(err) != 1 || !strings.Contains(err.Error(), "nothing removed") {
		t.Fatalf("remove no.such: %v (exit %d)", err, ExitCode(err))
	}
	if _, _, err := run(t, "nsc", "--ns", addr, "remove", "Pyro.NameServer"); !errors.Is(err, gopyro.ErrInvalid) || !strings.Contains(err.Error(), "never removed") {
		t.Fatalf("remove Pyro.NameServer: %v", err)
	}
	if out, _, err := run(t, "nsc", "--ns", addr, "remove", "--prefix", "zzz"); err != nil || !strings.Contains(out, "no name matched") {
		t.Fatalf("remove --prefix zzz: %q, %v", out, err)
	}
	// --ns takes :PORT and the URI gopyro ns prints (items 17, 27).
	port := addr[strings.LastIndex(addr, ":"):]
	for _, ns := range []string{port, nsURI} {
		if out, _, err := run(t, "nsc", "--ns", ns, "ping"); err != nil || !strings.Contains(out, "is alive") {
			t.Fatalf("nsc --ns %s ping: %q, %v", ns, out, err)
		}
	}
}

// Usage errors exit 2, wherever they are (issue 15, items 11, 16, 27).
func TestMoreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nsc", "bogus"},
		{"nsc"},
		{"nsc", "list", "a", "b"},
		{"nsc", "lookup", "a", "b"},
		{"nsc", "yplookup"},
		{"ns", "--memory", "--store", "x.db"},
		{"ns", "--memory", "--autoclean", "-1s"},
		{"demo", "chain", "--name", "x"},
		{"version", "extra"},
	} {
		_, _, err := run(t, args...)
		if err == nil || ExitCode(err) != 2 {
			t.Errorf("%v: err = %v (exit %d), want a usage error", args, err, ExitCode(err))
		}
	}
}

// nsc list --regex matches whole names, and says so (issue 15, item 12).
func TestListRegexWhole(t *testing.T) {
	nsURI := startServer(t, "ns", "--memory", "--port", "0")
	addr := strings.TrimPrefix(nsURI, "PYRO:Pyro.NameServer@")
	for _, n := range []string{"shop", "shop.eu", "myshop"} {
		if _, _, err := run(t, "nsc", "--ns", addr, "register", n, "PYRO:x@127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := run(t, "nsc", "--ns", addr, "--json", "list", "--regex", "shop")
	if err != nil || !strings.Contains(out, `"shop"`) || strings.Contains(out, "shop.eu") || strings.Contains(out, "myshop") {
		t.Fatalf("list --regex shop: %s %v", out, err)
	}
	if help, _, _ := run(t, "nsc", "list", "--help"); !strings.Contains(help, "matches whole") {
		t.Fatalf("help does not say the regex matches whole names:\n%s", help)
	}
}

// Integers stay exact up to 64 bits, and beyond are refused, not rounded
// (issue 15, item 15).
func TestCallBigIntegers(t *testing.T) {
	uri := startEcho(t)
	for _, n := range []string{"12345678901234567890", "-9223372036854775808", "18446744073709551615"} {
		if out, _, err := run(t, "call", uri, "echo", n); err != nil || strings.TrimSpace(out) != n {
			t.Errorf("echo %s = %q, %v", n, out, err)
		}
	}
	if _, _, err := run(t, "call", uri, "echo", "[1, 123456789012345678901234]"); ExitCode(err) != 2 || !strings.Contains(err.Error(), "does not fit 64 bits") {
		t.Errorf("echo of a 78-bit integer: %v (exit %d)", err, ExitCode(err))
	}
}

// A server stopped by a signal lets the calls in flight finish, up to
// --grace (issue 15, item 26).
func TestServerDrainsOnSignal(t *testing.T) {
	for _, c := range []struct {
		grace, slow string
		ok          bool
	}{{"10s", "0.3", true}, {"50ms", "30", false}} {
		ctx, cancel := context.WithCancel(t.Context())
		var out testutil.Lines
		done := make(chan error, 1)
		go func() { done <- Run(ctx, []string{"echo", "--verbose", "--grace", c.grace}, nil, &out, io.Discard) }()
		uri := out.Wait(t, testutil.Prefix("PYRO:"))
		type result struct {
			out string
			err error
		}
		called := make(chan result, 1)
		go func() {
			o, _, err := run(t, "call", uri, "slow", c.slow)
			called <- result{o, err}
		}()
		out.Wait(t, func(s string) bool { return strings.Contains(s, "slow: waiting") })
		cancel() // as SIGINT does
		r := <-called
		err := <-done
		if c.ok {
			if r.err != nil || strings.TrimSpace(r.out) != `"slept 0.3 seconds"` || err != nil {
				t.Errorf("grace %s: call = %q, %v; echo = %v", c.grace, r.out, r.err, err)
			}
		} else if r.err == nil || err == nil || !strings.Contains(err.Error(), "--grace 50ms") {
			t.Errorf("grace %s: call = %q, %v; echo = %v", c.grace, r.out, r.err, err)
		}
	}
}

// The name server logs each registration change at info level, in the
// format asked for (issue 15, item 18).
func TestNameServerLogs(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var out, logs testutil.Lines
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"ns", "--memory", "--port", "0", "--log-format", "json"}, nil, &out, &logs)
	}()
	defer func() { cancel(); <-done }()
	addr := strings.TrimPrefix(out.Wait(t, testutil.Prefix("PYRO:")), "PYRO:Pyro.NameServer@")
	if _, _, err := run(t, "nsc", "--ns", addr, "register", "a.b", "PYRO:x@127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "nsc", "--ns", addr, "remove", "a.b"); err != nil {
		t.Fatal(err)
	}
	logs.Wait(t, func(s string) bool {
		return strings.Contains(s, `"msg":"nameserver: registered"`) && strings.Contains(s, `"name":"a.b"`)
	})
	logs.Wait(t, func(s string) bool {
		return strings.Contains(s, `"msg":"nameserver: removed"`) && strings.Contains(s, `"level":"INFO"`)
	})
	if _, _, err := run(t, "ns", "--log-level", "loud"); ExitCode(err) != 2 {
		t.Errorf("--log-level loud: %v", err)
	}
}

// Servers listen on unix sockets (--host ./u:PATH), and their URIs work
// with call and with the name server (issue 15, item 3).
func TestUnixSocketCLI(t *testing.T) {
	dir := t.TempDir()
	nsURI := startServer(t, "ns", "--memory", "--host", "./u:"+filepath.Join(dir, "ns.sock"))
	if want := "PYRO:Pyro.NameServer@./u:" + filepath.Join(dir, "ns.sock"); nsURI != want {
		t.Fatalf("ns URI = %s, want %s", nsURI, want)
	}
	uri := startServer(t, "echo", "--host", "./u:"+filepath.Join(dir, "echo.sock"), "--naming", "--ns", nsURI)
	if !strings.HasPrefix(uri, "PYRO:test.echoserver@./u:") {
		t.Fatalf("echo URI = %s", uri)
	}
	if out, _, err := run(t, "call", uri, "echo", `"over unix"`); err != nil || strings.TrimSpace(out) != `"over unix"` {
		t.Fatalf("call = %q, %v", out, err)
	}
	if out, _, err := run(t, "nsc", "--ns", nsURI, "lookup", "test.echoserver"); err != nil || strings.TrimSpace(out) != uri {
		t.Fatalf("lookup = %q, %v", out, err)
	}
	// A socket file left by a dead server is replaced; a live one is not.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	startServer(t, "echo", "--host", "./u:"+stale)
	if _, _, err := run(t, "echo", "--host", "./u:"+stale); err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Fatalf("a second echo on a live socket: %v", err)
	}
}

// A command interrupted by SIGINT exits 130 (issue 15, item 11); a server
// stopped by it drains and exits 0 (TestProcesses).
func TestInterruptedExit130(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	read := make(chan struct{}, 1)
	go func() { // accepts, reads the request, never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				var b [1]byte
				if _, err := c.Read(b[:]); err == nil {
					read <- struct{}{}
				}
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
			}()
		}
	}()
	cmd := exec.CommandContext(t.Context(), buildBinary(t), "call", "--timeout", "0", "PYRO:x@"+ln.Addr().String(), "m")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-read: // the call is in flight
	case <-time.After(30 * time.Second):
		t.Fatal("the call never reached the peer")
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit after SIGINT: %v", err)
	}
}

// A demo whose client fails says why on the client's own line (issue 15,
// item 29).
func TestDemoFailurePrefixed(t *testing.T) {
	out, _, err := run(t, "demo", "greeting", "--name", "")
	if ExitCode(err) != 1 || !strings.Contains(out, "[client] error: ") || !strings.Contains(out, "tell me your name first") {
		t.Fatalf("demo greeting --name '': %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "[") {
			t.Errorf("a line without its part: %q", line)
		}
	}
}

// gopyro echo --name registers under that name, and removes it on exit
// (issue 15, item 14).
func TestEchoName(t *testing.T) {
	nsURI := startServer(t, "ns", "--memory", "--port", "0")
	ctx, cancel := context.WithCancel(t.Context())
	var out testutil.Lines
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"echo", "--name", "my.echo", "--ns", nsURI}, nil, &out, io.Discard) }()
	uri := out.Wait(t, testutil.Prefix("PYRO:"))
	if got, _, err := run(t, "nsc", "--ns", nsURI, "lookup", "my.echo"); err != nil || strings.TrimSpace(got) != uri {
		t.Fatalf("lookup my.echo = %q, %v", got, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "nsc", "--ns", nsURI, "lookup", "my.echo"); !errors.Is(err, gopyro.ErrNotFound) {
		t.Fatalf("after exit: %v", err)
	}
}
