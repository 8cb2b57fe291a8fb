package main

import (
	"context"
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
	ctx, cancel := context.WithCancel(t.Context())
	var out testutil.Lines
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-ns", ns.URI().Address()}, nil, &out) }()
	out.Wait(t, testutil.Prefix("Registered names with prefix example.shop.: {'example.shop.Shop': 'PYRO:"))
	var client strings.Builder
	if err := shop.Client(t.Context(), ns, &client); err != nil {
		t.Fatal(err)
	}
	out.Wait(t, testutil.Prefix("logout Meeta"))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
