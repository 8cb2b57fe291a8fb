// Package cookbook is the RPyC classic recipe in gopyro: a classic server
// runs Go source for its clients; a client runs code there, first with
// its output on the server's console, then redirected to its own stdout.
//
// The RPyC original:
//
//	c = rpyc.classic.connect("localhost")
//	c.execute("print ('hi python cookbook')")   # printed on the server's console
//	c.modules.sys.stdout = sys.stdout
//	c.execute("print ('hi here')")              # printed on the client's terminal
package cookbook

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/gopyro/gopyro/classic"
)

// Start serves classic sessions on ln until ctx is done; the sessions'
// output that is not redirected goes to console. cfg.WorkerCommand must
// start a program that calls classic.ServeWorker (the default, this
// program, does when main checks classic.IsWorker first).
func Start(ctx context.Context, ln net.Listener, console io.Writer, cfg classic.Config) (*classic.Server, <-chan error, error) {
	cfg.Stdout, cfg.Stderr = console, console
	s := classic.NewServer(cfg)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		return nil, nil, err
	}
	fmt.Fprintf(console, "classic server on %s\n", s.Addr())
	return s, errc, nil
}

// Client runs the recipe against the server at addr, with stdout as its
// own terminal.
func Client(ctx context.Context, addr string, stdout io.Writer) error {
	c, err := classic.Connect(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	// Printed on the server's console.
	if err := c.Execute(ctx, `fmt.Println("hi python cookbook")`); err != nil {
		return err
	}
	// From now on the session's stdout comes here.
	if err := c.RedirectStdout(stdout); err != nil {
		return err
	}
	if err := c.Execute(ctx, `fmt.Println("hi here")`); err != nil {
		return err
	}
	// Values come back typed; declarations persist in the session.
	if err := c.Execute(ctx, `func Add(a, b int) int { return a + b }`); err != nil {
		return err
	}
	n, err := classic.Eval[int](ctx, c, "Add(40, 2)")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Add(40, 2) = %d, computed in worker process %d\n", n, c.PID())
	return nil
}
