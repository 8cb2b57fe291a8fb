package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gopyro/gopyro/examples/shop"
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
	s, err := shop.Start(ctx, ln, ns, &testutil.Lines{})
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
	if err := run(t.Context(), []string{"-ns", ns.URI().Address()}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "The accounts in the BuyAnythingOnline:\n Meeta : 100.00\n Rashmi : 63.00\n") {
		t.Fatalf("printed:\n%s", out.String())
	}
}
