// Command client runs the shop example's customers, Rashmi and Meeta,
// against the remote shop. A name server and the shop server must be
// running.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/gopyro/gopyro/examples/shop"
	"github.com/gopyro/gopyro/nameserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "shop client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	ns := fs.String("ns", "", "name server host:port (default: $GOPYRO_NS_HOST:$GOPYRO_NS_PORT, else 127.0.0.1:9090)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nsc, err := nameserver.Locate(ctx, nameserver.At(*ns))
	if err != nil {
		return err
	}
	defer nsc.Close()
	return shop.Client(ctx, nsc, stdout)
}
