// Command client runs the cookbook recipe against a classic server.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"

	"github.com/gopyro/gopyro/classic"
	cookbook "github.com/gopyro/gopyro/examples/classic"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:"+strconv.Itoa(classic.DefaultPort), "the classic server")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := cookbook.Client(ctx, *addr, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
