// Command client sends a message round the chain example's ring and prints
// what came back. A name server and the three chain servers must be running.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/gopyro/gopyro/examples/chain"
	"github.com/gopyro/gopyro/nameserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	var u usageError
	switch {
	case errors.Is(err, flag.ErrHelp): // -h: the usage is printed
	case errors.As(err, &u):
		fmt.Fprintln(os.Stderr, "chain client:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "chain client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
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
	nsc, err := nameserver.Locate(ctx, nameserver.At(*ns))
	if err != nil {
		return err
	}
	defer nsc.Close()
	return chain.Client(ctx, nsc, stdout)
}

// usageError is bad command-line use: exit status 2.
type usageError struct{ error }
