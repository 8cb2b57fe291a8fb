// Command gopyro runs gopyro servers and tools: the name server, an echo
// server, one-off calls from the shell, the cookbook demos and benchmarks.
// Run "gopyro --help" for the list.
//
// Exit status: 0 on success, 1 when the command failed, 2 for bad usage,
// and 128 plus the signal's number (130 for SIGINT, 143 for SIGTERM) when a
// signal interrupted a command that then failed. A server stopped by a
// signal drains and exits 0.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/gopyro/gopyro/cmd/gopyro/internal/cli"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var got atomic.Value // the signal that arrived
	go func() {
		s := <-sigs
		got.Store(s)
		signal.Stop(sigs) // a second one kills, as usual
		cancel()
	}()
	err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gopyro:", err)
		if s, ok := got.Load().(syscall.Signal); ok {
			os.Exit(128 + int(s))
		}
		os.Exit(cli.ExitCode(err))
	}
}
