package daemon_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver/nstest"
	"github.com/gopyro/gopyro/proxy"
)

type unixEcho struct{}

func (unixEcho) Echo(s string) string { return s }

// A daemon on a unix socket makes ./u: URIs that proxies call, directly
// and through the name server (issue 15, item 3).
func TestUnixSocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.ServeOn(t, ln)
	u, err := d.Register(unixEcho{}, daemon.WithID("e"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "PYRO:e@./u:" + path; u.String() != want {
		t.Fatalf("URI = %s, want %s", u, want)
	}
	p, err := proxy.NewURI(u)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, err := proxy.Call[string](ctx, p, "Echo", "hi"); err != nil || got != "hi" {
		t.Fatalf("Echo = %q, %v", got, err)
	}
	ns := nstest.Start(t)
	if err := ns.Register(ctx, "test.unix", u); err != nil {
		t.Fatal(err)
	}
	q, err := proxy.New("PYRONAME:test.unix", proxy.WithResolver(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if got, err := proxy.Call[string](ctx, q, "Echo", "by name"); err != nil || got != "by name" {
		t.Fatalf("Echo by name = %q, %v", got, err)
	}
	// WithAdvertise takes a socket path too.
	d2, err := daemon.New(daemon.WithAdvertise("./u:/run/x.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if u2, err := d2.Register(unixEcho{}, daemon.WithID("e")); err != nil || u2.String() != "PYRO:e@./u:/run/x.sock" {
		t.Fatalf("advertised URI = %v, %v", u2, err)
	}
}
