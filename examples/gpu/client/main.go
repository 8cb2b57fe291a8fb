// Command client runs the cookbook's GPU recipes against a service:
//
//	client PYRO:gopyro.gpu@127.0.0.1:PORT
//	client PYRONAME:gopyro.gpu        # registered by gopyro gpu
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	cookbook "github.com/gopyro/gopyro/examples/gpu"
	"github.com/gopyro/gopyro/gpu"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: client [URI]   (default PYRONAME:gopyro.gpu)")
	}
	flag.Parse()
	uri := "PYRONAME:" + gpu.DefaultName
	switch flag.NArg() {
	case 0:
	case 1:
		uri = flag.Arg(0)
	default:
		flag.Usage()
		os.Exit(2)
	}
	ctx := context.Background()
	c, err := gpu.Dial(ctx, uri)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	if err := cookbook.Recipes(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
