// Command gopyro runs gopyro servers and tools: the name server, an echo
// server, one-off calls from the shell, the cookbook demos and benchmarks.
// Run "gopyro --help" for the list.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gopyro/gopyro/cmd/gopyro/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gopyro:", err)
		os.Exit(cli.ExitCode(err))
	}
}
