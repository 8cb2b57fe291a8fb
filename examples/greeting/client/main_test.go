package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gopyro/gopyro/examples/greeting"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver/nstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ns := nstest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	s, err := greeting.Start(ctx, ln, ns, &testutil.Lines{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Error(err)
		}
	}()
	var out strings.Builder
	if err := run(t.Context(), []string{"-ns", ns.URI().Address()}, strings.NewReader("Irmen\n"), &out); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "What is your name? Hi welcome Irmen\n"; got != want {
		t.Fatalf("printed %q, want %q", got, want)
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
