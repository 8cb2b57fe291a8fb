package main

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/nameserver/nstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNoRing: without the servers the client says the first link is not
// registered. The full ring is tested in package chain and ../server.
func TestNoRing(t *testing.T) {
	ns := nstest.Start(t)
	err := run(t.Context(), []string{"-ns", ns.URI().Address()}, nil, &strings.Builder{})
	if !errors.Is(err, gopyro.ErrNotFound) || !strings.Contains(err.Error(), "example.chain.1") {
		t.Fatalf("err = %v", err)
	}
}
