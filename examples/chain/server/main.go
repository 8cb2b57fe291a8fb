// Command server runs one link of the chain example. Start three, as
// "-this 1 -next 2", "-this 2 -next 3" and "-this 3 -next 1", with a name
// server running (gopyro ns).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/gopyro/gopyro/examples/chain"
	"github.com/gopyro/gopyro/nameserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	var u usageError
	switch {
	case errors.Is(err, flag.ErrHelp): // -h: the usage is printed
	case errors.As(err, &u):
		fmt.Fprintln(os.Stderr, "chain server:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "chain server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	this := fs.String("this", "", "this link's name, such as 1 (required)")
	next := fs.String("next", "", "the next link's name, such as 2 (required)")
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 0, "port to listen on (0: any free port)")
	ns := fs.String("ns", "", "name server host:port (default: $GOPYRO_NS_HOST:$GOPYRO_NS_PORT, else 127.0.0.1:9090)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q (see -h)", fs.Args())}
	}
	if *this == "" || *next == "" {
		return errors.New("both -this and -next are required, for example -this 1 -next 2")
	}
	nsc, err := nameserver.Locate(ctx, nameserver.At(*ns))
	if err != nil {
		return err
	}
	defer nsc.Close()
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	s, err := chain.Start(ctx, ln, nsc, *this, *next, stdout)
	if err != nil {
		return err
	}
	return s.Wait()
}

// usageError is bad command-line use: exit status 2.
type usageError struct{ error }
