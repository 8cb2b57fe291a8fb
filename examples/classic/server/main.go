// Command server is the classic server of the cookbook recipe: it serves
// remote execution of Go source on 127.0.0.1:18812 until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/gopyro/gopyro/classic"
	cookbook "github.com/gopyro/gopyro/examples/classic"
)

func main() {
	// This program is also each session's worker process.
	if classic.IsWorker() {
		classic.ServeWorker()
	}
	port := flag.Int("port", classic.DefaultPort, "port to serve on 127.0.0.1 (0: any)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, errc, err := cookbook.Start(ctx, ln, os.Stdout, classic.Config{})
	if err == nil {
		err = <-errc
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
