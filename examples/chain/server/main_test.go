package main

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gopyro/gopyro/examples/chain"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver/nstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun runs the whole ring through run, one goroutine per server.
func TestRun(t *testing.T) {
	ns := nstest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	var outs [3]testutil.Lines
	done := make(chan error, 3)
	for i, link := range [][2]string{{"1", "2"}, {"2", "3"}, {"3", "1"}} {
		go func() {
			done <- run(ctx, []string{"-this", link[0], "-next", link[1], "-ns", ns.URI().Address()}, nil, &outs[i])
		}()
		outs[i].Wait(t, testutil.Prefix("server_"+link[0]+" started"))
	}
	var client strings.Builder
	if err := chain.Client(t.Context(), ns, &client); err != nil || !strings.HasPrefix(client.String(), "Result=['passed on from 1'") {
		t.Fatalf("client: %q %v", client.String(), err)
	}
	outs[0].Wait(t, testutil.Prefix("Back at 1; the chain is closed!"))
	cancel()
	for range 3 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-this", "1"}, {"-next", "2"}, {"-port", "x"}} {
		if err := run(t.Context(), args, nil, &strings.Builder{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// -h is not an error (exit 0); an extra argument is a usage error (exit
// 2) (issue 15, item 29).
func TestHelpAndExtraArgs(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"-h"}, strings.NewReader(""), &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	var u usageError
	if err := run(t.Context(), []string{"-ns", "127.0.0.1:1", "extra"}, strings.NewReader(""), &out); !errors.As(err, &u) || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("an extra argument: %v", err)
	}
	if err := run(t.Context(), []string{"-nosuchflag"}, strings.NewReader(""), &out); !errors.As(err, &u) {
		t.Fatalf("an unknown flag: %v", err)
	}
}
