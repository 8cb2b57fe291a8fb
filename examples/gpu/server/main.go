// Command server serves the GPU compute service on the CPU backend, for
// the cookbook's recipes: it prints its URI, then serves until
// interrupted. (gopyro gpu is the full server: name server, CUDA, limits.)
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"

	cookbook "github.com/gopyro/gopyro/examples/gpu"
	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/gpu/cpu"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	uri, errc, err := cookbook.Serve(ctx, ln, cpu.New(), gpu.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(uri)
	if err := <-errc; err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
