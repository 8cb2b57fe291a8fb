package main

import (
	"context"
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
	ctx, cancel := context.WithCancel(t.Context())
	var out testutil.Lines
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-port", "0", "-ns", ns.URI().Address()}, nil, &out) }()
	line := out.Wait(t, testutil.Prefix("Ready. Object uri = PYRO:obj_"))
	uri, err := ns.Lookup(t.Context(), greeting.Name)
	if err != nil || !strings.HasSuffix(line, "= "+uri.String()) {
		t.Fatalf("printed %q, name server has %v (%v)", line, uri, err)
	}
	var client strings.Builder
	if err := greeting.Client(t.Context(), ns, strings.NewReader("Ada\n"), &client); err != nil || !strings.HasSuffix(client.String(), "Hi welcome Ada\n") {
		t.Fatalf("client: %q %v", client.String(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBadFlags(t *testing.T) {
	if err := run(t.Context(), []string{"-port", "x"}, nil, &strings.Builder{}); err == nil {
		t.Fatal("bad -port accepted")
	}
}
