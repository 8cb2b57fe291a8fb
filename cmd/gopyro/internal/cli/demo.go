package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/classic"
	"github.com/gopyro/gopyro/examples/chain"
	cookbook "github.com/gopyro/gopyro/examples/classic"
	gpucookbook "github.com/gopyro/gopyro/examples/gpu"
	"github.com/gopyro/gopyro/examples/greeting"
	"github.com/gopyro/gopyro/examples/interop"
	"github.com/gopyro/gopyro/examples/shop"
	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/gpu/cpu"
	"github.com/gopyro/gopyro/nameserver"
)

func demoCmd(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "demo greeting|chain|shop|classic|gpu|interop",
		Short: "Run one of the example scenarios end to end",
		Long: `Run an example scenario in one command: its own in-memory name server on a
free 127.0.0.1 port, the scenario's servers, then its client. Every line is
prefixed with the part that printed it ([ns], [server], [server_1],
[client]). Each part has its own daemon, listener and connections, exactly as
when they run as separate processes (see examples/*/README.md for that); they
share this one process so that nothing is left behind.

  greeting  a client asks the name server for "example.greeting" and is
            greeted (--name sets the name it types, default gopyro)
  chain     three servers in a ring pass a message round back to the first
  shop      two customers shop at BuyAnythingOnline; the accounts are listed
  classic   RPyC's classic recipe: a client runs Go code on a classic server,
            first printing on the server's console, then redirecting the
            session's stdout to its own
  gpu       the cookbook's PyCUDA/NumbaPro recipes on a GPU compute service
            (CPU backend) registered as gopyro.gpu, each checking its result
  interop   Python Pyro4 and gopyro mixed: the cookbook's Python greeting and
            shop clients call the Go servers; the chain with a Python server 2
            between Go servers 1 and 3; a Go client calls Pyro's Python echo
            server through the name server. It needs a python3 with Pyro4 on
            the PATH (or GOPYRO_PYTHON); the scripts are examples/interop/*.py`,
		Example: "  gopyro demo chain\n  gopyro demo greeting --name Ada",
		Args: func(cmd *cobra.Command, args []string) error {
			if err := exactArgs(1)(cmd, args); err != nil {
				return err
			}
			switch args[0] {
			case "greeting", "chain", "shop", "classic", "gpu", "interop":
				return nil
			}
			return usageError{fmt.Errorf("unknown scenario %q (greeting, chain, shop, classic, gpu or interop)", args[0])}
		},
		ValidArgs: []string{"greeting", "chain", "shop", "classic", "gpu", "interop"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("name") && args[0] != "greeting" {
				return usageError{fmt.Errorf("--name is for the greeting demo only")}
			}
			return runDemo(cmd.Context(), args[0], name, e.stdout)
		},
	}
	cmd.Flags().StringVar(&name, "name", "gopyro", "the name the greeting client types")
	return cmd
}

// runDemo runs scenario with every part writing prefixed lines to stdout.
func runDemo(ctx context.Context, scenario, name string, stdout io.Writer) (err error) {
	out := &prefixer{w: stdout}
	defer func() { err = errors.Join(err, out.flush()) }()
	if scenario == "classic" {
		return runClassicDemo(ctx, out)
	}
	var python string
	if scenario == "interop" {
		if python, err = interop.FindPython(ctx); err != nil {
			return err
		}
	}

	nsOut := out.part("ns")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// The name server's warnings, if any, print as its part's lines.
	srv, err := nameserver.New(nameserver.WithLogger(slog.New(slog.NewTextHandler(nsOut, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return err
	}
	nsDone := make(chan error, 1)
	go func() { nsDone <- srv.Serve(context.WithoutCancel(ctx), ln) }()
	defer func() { err = errors.Join(err, srv.Close(), <-nsDone) }()
	select {
	case <-srv.Ready():
	case err := <-nsDone:
		nsDone <- nil
		return err
	}
	fmt.Fprintf(nsOut, "name server %s (in memory)\n", srv.URI())
	ns, err := nameserver.NewClient(srv.URI().String())
	if err != nil {
		return err
	}
	defer ns.Close()

	// The servers run until the client is done.
	sctx, stop := context.WithCancel(ctx)
	var waits []func() error
	defer func() {
		stop()
		for _, w := range waits {
			err = errors.Join(err, w())
		}
	}()
	client := out.part("client")
	if err := runScenario(ctx, scenario, name, python, ns, out, client, sctx, &waits); err != nil {
		// The failure is the client's line, like everything it prints.
		fmt.Fprintf(client, "error: %v\n", err)
		return fmt.Errorf("demo %s failed (its client's last line says why)", scenario)
	}
	return nil
}

// runScenario starts scenario's servers (their waits go into waits) and
// runs its client.
func runScenario(ctx context.Context, scenario, name, python string, ns *nameserver.Client, out *prefixer, client io.Writer, sctx context.Context, waits *[]func() error) (err error) {
	listen := func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	switch scenario {
	case "greeting":
		l, err := listen()
		if err != nil {
			return err
		}
		s, err := greeting.Start(sctx, l, ns, out.part("server"))
		if err != nil {
			return err
		}
		*waits = append(*waits, s.Wait)
		// The name arrives as if typed at a terminal, which echoes it.
		typed := io.TeeReader(strings.NewReader(name+"\n"), client)
		return greeting.Client(ctx, ns, typed, client)
	case "chain":
		for _, link := range [][2]string{{"1", "2"}, {"2", "3"}, {"3", "1"}} {
			l, err := listen()
			if err != nil {
				return err
			}
			s, err := chain.Start(sctx, l, ns, link[0], link[1], out.part("server_"+link[0]))
			if err != nil {
				return err
			}
			*waits = append(*waits, s.Wait)
		}
		return chain.Client(ctx, ns, client)
	case "shop":
		l, err := listen()
		if err != nil {
			return err
		}
		s, err := shop.Start(sctx, l, ns, out.part("server"))
		if err != nil {
			return err
		}
		*waits = append(*waits, s.Wait)
		return shop.Client(ctx, ns, client)
	case "interop":
		e := &interop.Env{Python: python, NS: ns, Out: func(part string) io.Writer { return out.part(part) }}
		defer func() { err = errors.Join(err, e.Close()) }()
		return interop.All(ctx, e)
	case "gpu":
		l, err := listen()
		if err != nil {
			return err
		}
		server := out.part("server")
		uri, errc, err := gpucookbook.Serve(sctx, l, cpu.New(), gpu.Config{})
		if err != nil {
			return err
		}
		*waits = append(*waits, func() error { return <-errc })
		u, err := gopyro.Parse(uri)
		if err != nil {
			return err
		}
		if err := ns.Register(ctx, gpu.DefaultName, u); err != nil {
			return err
		}
		fmt.Fprintf(server, "GPU compute service %s (CPU backend), registered as %s\n", uri, gpu.DefaultName)
		c, err := gpu.Dial(ctx, "PYRONAME:"+gpu.DefaultName+"@"+ns.URI().Host+":"+strconv.Itoa(ns.URI().Port))
		if err != nil {
			return err
		}
		defer c.Close()
		return gpucookbook.Recipes(ctx, c, client)
	}
	return usageError{fmt.Errorf("unknown scenario %q", scenario)}
}

// runClassicDemo runs the cookbook's classic recipe: a classic server
// (its workers are this program, re-executed) and its client.
func runClassicDemo(ctx context.Context, out *prefixer) (err error) {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	s, errc, err := cookbook.Start(sctx, ln, out.part("server"), classic.Config{
		WorkerCommand: func() *exec.Cmd { return exec.Command(exe, "classic", "worker") }})
	if err != nil {
		stop()
		return err
	}
	defer func() { stop(); err = errors.Join(err, <-errc) }()
	return cookbook.Client(ctx, s.Addr().String(), out.part("client"))
}

// prefixer writes whole lines from several parts to one writer, each line
// prefixed with its part's name.
type prefixer struct {
	mu    sync.Mutex
	w     io.Writer
	parts []*part
}

type part struct {
	p      *prefixer
	prefix string
	buf    []byte
}

func (p *prefixer) part(name string) io.Writer {
	p.mu.Lock()
	defer p.mu.Unlock()
	pt := &part{p: p, prefix: "[" + name + "] "}
	p.parts = append(p.parts, pt)
	return pt
}

func (pt *part) Write(b []byte) (int, error) {
	pt.p.mu.Lock()
	defer pt.p.mu.Unlock()
	pt.buf = append(pt.buf, b...)
	for {
		i := bytes.IndexByte(pt.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(pt.p.w, "%s%s\n", pt.prefixFor(i), pt.buf[:i]); err != nil {
			return 0, err
		}
		pt.buf = pt.buf[i+1:]
	}
}

// prefixFor returns the prefix of a line of n bytes: no trailing blank
// before an empty line.
func (pt *part) prefixFor(n int) string {
	if n == 0 {
		return strings.TrimSuffix(pt.prefix, " ")
	}
	return pt.prefix
}

// flush writes what is left of unterminated lines.
func (p *prefixer) flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pt := range p.parts {
		if len(pt.buf) > 0 {
			if _, err := fmt.Fprintf(p.w, "%s%s\n", pt.prefix, pt.buf); err != nil {
				return err
			}
			pt.buf = nil
		}
	}
	return nil
}
