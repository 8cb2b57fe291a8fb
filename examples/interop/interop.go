// Package interop mixes Python Pyro4 with gopyro, as a team moving from
// Pyro to Go does one service at a time. The cookbook's own Python scripts
// (in this folder) run unchanged against gopyro's Go servers and name
// server, and a Go client calls Pyro's own Python echo server:
//
//   - greeting: greeting_client.py calls welcomeMessage on the Go greeting server;
//   - shop: shop_client.py shops at the Go shop (found with ns.lookup);
//   - ring: the chain with server 2 the Python chain_server.py and servers 1
//     and 3 gopyro's Go servers; chain_client.py starts the message;
//   - echo: Pyro4.test.echoserver registers itself with gopyro's name server
//     and a Go proxy calls it through PYRONAME.
//
// Run it with: go run ./cmd/gopyro demo interop (it needs a Python 3 with
// Pyro4: Debian's python3-pyro4, or pip install Pyro4).
package interop

import (
	"bufio"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopyro/gopyro/examples/chain"
	"github.com/gopyro/gopyro/examples/greeting"
	"github.com/gopyro/gopyro/examples/shop"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/proxy"
)

//go:embed *.py
var scripts embed.FS

// FindPython returns a Python 3 that imports Pyro4: $GOPYRO_PYTHON when
// set, else python3 on the PATH, else /usr/bin/python3.
func FindPython(ctx context.Context) (string, error) {
	candidates := []string{"python3", "/usr/bin/python3"}
	if p := os.Getenv("GOPYRO_PYTHON"); p != "" {
		candidates = []string{p}
	}
	var tried []string
	for _, c := range candidates {
		exe, err := exec.LookPath(c)
		if err != nil {
			tried = append(tried, c+" (not found)")
			continue
		}
		if err := exec.CommandContext(ctx, exe, "-c", "import Pyro4").Run(); err != nil {
			tried = append(tried, exe+" (no Pyro4)")
			continue
		}
		return exe, nil
	}
	return "", fmt.Errorf("no Python 3 with Pyro4: tried %s. Install it (Debian: apt-get install python3-pyro4; elsewhere: pip install Pyro4), or set GOPYRO_PYTHON to a python3 that has it",
		strings.Join(tried, ", "))
}

// Env is what the scenarios share: the Python to run, gopyro's name
// server, and where each part prints.
type Env struct {
	Python string
	NS     *nameserver.Client
	// Out returns the writer of a part ("python_client", "server_1", ...).
	Out func(part string) io.Writer

	once sync.Once
	dir  string
	err  error
}

// Close removes the scripts written for the Python processes.
func (e *Env) Close() error {
	if e.dir == "" {
		return nil
	}
	return os.RemoveAll(e.dir)
}

// script returns the path of one of this folder's Python scripts, written
// out for the Python process to run.
func (e *Env) script(name string) (string, error) {
	e.once.Do(func() {
		if e.dir, e.err = os.MkdirTemp("", "gopyro-interop"); e.err != nil {
			return
		}
		entries, _ := scripts.ReadDir(".")
		for _, ent := range entries {
			b, _ := scripts.ReadFile(ent.Name())
			if e.err = os.WriteFile(filepath.Join(e.dir, ent.Name()), b, 0o644); e.err != nil {
				return
			}
		}
	})
	return filepath.Join(e.dir, name), e.err
}

// python makes a Python command that finds gopyro's name server as Pyro's
// own (PYRO_NS_HOST, PYRO_NS_PORT) and binds its daemons to 127.0.0.1.
func (e *Env) python(ctx context.Context, stdout io.Writer, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.Python, append([]string{"-u"}, args...)...)
	ns := e.NS.URI()
	cmd.Env = append(os.Environ(), "PYRO_NS_HOST="+ns.Host, "PYRO_NS_PORT="+strconv.Itoa(ns.Port), "PYRO_HOST=127.0.0.1")
	cmd.Stdout, cmd.Stderr = stdout, stdout
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runScript runs one of the Python clients to its end.
func (e *Env) runScript(ctx context.Context, name string, args ...string) error {
	path, err := e.script(name)
	if err != nil {
		return err
	}
	if err := e.python(ctx, e.Out("python_client"), append([]string{path}, args...)...).Run(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// startPython starts a Python server process and waits for its output
// to hold ready; stop kills it.
func (e *Env) startPython(ctx context.Context, part, ready string, args ...string) (stop func(), err error) {
	w := &watcher{out: e.Out(part), match: ready, seen: make(chan struct{})}
	cmd := e.python(ctx, w, args...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	select {
	case <-w.seen:
		return stop, nil
	case err := <-exited:
		exited <- err
		return nil, fmt.Errorf("the Python server %s exited before it was ready: %v", part, err)
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	}
}

// watcher copies a process's output and reports the first line holding
// match.
type watcher struct {
	out   io.Writer
	match string
	seen  chan struct{} // closed at the first match

	mu    sync.Mutex
	buf   []byte // the output so far, until the match
	found bool
}

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.found {
		w.buf = append(w.buf, p...)
		sc := bufio.NewScanner(strings.NewReader(string(w.buf)))
		for sc.Scan() {
			if strings.Contains(sc.Text(), w.match) {
				close(w.seen)
				w.found, w.buf = true, nil
				break
			}
		}
	}
	return w.out.Write(p)
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// Greeting runs greeting_client.py against the Go greeting server.
func Greeting(ctx context.Context, e *Env, name string) (err error) {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ln, err := listen()
	if err != nil {
		return err
	}
	s, err := greeting.Start(sctx, ln, e.NS, e.Out("server"))
	if err != nil {
		return err
	}
	defer func() { stop(); err = errors.Join(err, s.Wait()) }()
	return e.runScript(ctx, "greeting_client.py", name)
}

// Shop runs shop_client.py against the Go shop.
func Shop(ctx context.Context, e *Env) (err error) {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ln, err := listen()
	if err != nil {
		return err
	}
	s, err := shop.Start(sctx, ln, e.NS, e.Out("server"))
	if err != nil {
		return err
	}
	defer func() { stop(); err = errors.Join(err, s.Wait()) }()
	return e.runScript(ctx, "shop_client.py")
}

// Ring runs the mixed chain: Go servers 1 and 3, the Python chain_server.py
// as server 2, and chain_client.py, which prints
// Result=['passed on from 1', 'passed on from 2', 'passed on from 3', 'complete at 1'].
func Ring(ctx context.Context, e *Env) error { return ring(ctx, e, true) }

// GoRing runs chain_client.py against a ring of three Go servers.
func GoRing(ctx context.Context, e *Env) error { return ring(ctx, e, false) }

func ring(ctx context.Context, e *Env, mixed bool) (err error) {
	sctx, stop := context.WithCancel(ctx)
	var waits []func() error
	defer func() {
		stop()
		for _, w := range waits {
			err = errors.Join(err, w())
		}
	}()
	links := [][2]string{{"1", "2"}, {"2", "3"}, {"3", "1"}}
	if mixed {
		links = [][2]string{{"1", "2"}, {"3", "1"}}
	}
	for _, link := range links {
		ln, err := listen()
		if err != nil {
			return err
		}
		s, err := chain.Start(sctx, ln, e.NS, link[0], link[1], e.Out("server_"+link[0]))
		if err != nil {
			return err
		}
		waits = append(waits, s.Wait)
	}
	if !mixed {
		return e.runScript(ctx, "chain_client.py")
	}
	path, err := e.script("chain_server.py")
	if err != nil {
		return err
	}
	// serveSimple prints "Pyro daemon running." once registered.
	stopPy, err := e.startPython(ctx, "python_server_2", "Pyro daemon running", path, "2")
	if err != nil {
		return err
	}
	defer stopPy()
	return e.runScript(ctx, "chain_client.py")
}

// Echo starts Pyro's own echo server, which registers itself as
// test.echoserver with gopyro's name server, and calls it from Go.
func Echo(ctx context.Context, e *Env) error {
	stopPy, err := e.startPython(ctx, "python_echoserver", "echoserver running", "-m", "Pyro4.test.echoserver", "-n", "-H", "127.0.0.1")
	if err != nil {
		return err
	}
	defer stopPy()
	out := e.Out("go_client")
	p, err := proxy.New("PYRONAME:test.echoserver", proxy.WithResolver(e.NS))
	if err != nil {
		return err
	}
	defer p.Close()
	got, err := proxy.Call[[]any](ctx, p, "echo", []any{"hello from Go", 42, 2.5})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "echo: %v\n", got)
	_, err = p.Call(ctx, "error")
	fmt.Fprintf(out, "error: %v\n", err)
	var items []string
	for s, err := range proxy.Stream[string](ctx, p, "generator") {
		if err != nil {
			return err
		}
		items = append(items, s)
	}
	fmt.Fprintf(out, "generator: %v\n", items)
	return nil
}

// All runs every scenario in turn.
func All(ctx context.Context, e *Env) error {
	for _, run := range []func() error{
		func() error { return Greeting(ctx, e, "Ada") },
		func() error { return Shop(ctx, e) },
		func() error { return Ring(ctx, e) },
		func() error { return Echo(ctx, e) },
	} {
		if err := run(); err != nil {
			return err
		}
	}
	return nil
}
