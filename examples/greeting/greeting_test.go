package greeting_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/examples/greeting"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/nameserver/nstest"
	"github.com/gopyro/gopyro/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGreeting(t *testing.T) {
	ns := nstest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var out testutil.Lines
	s, err := greeting.Start(ctx, ln, ns, &out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.All(), []string{"Ready. Object uri = " + s.URI().String()}; !equal(got, want) {
		t.Fatalf("server printed %q, want %q", got, want)
	}

	var client strings.Builder
	if err := greeting.Client(t.Context(), ns, strings.NewReader("Ada\n"), &client); err != nil {
		t.Fatal(err)
	}
	if got, want := client.String(), "What is your name? Hi welcome Ada\n"; got != want {
		t.Fatalf("client printed %q, want %q", got, want)
	}

	// A name without a newline (stdin closed) still counts; an empty one is
	// refused remotely, with a type errors.Is recognises.
	client.Reset()
	if err := greeting.Client(t.Context(), ns, strings.NewReader("Bob"), &client); err != nil || !strings.HasSuffix(client.String(), "Hi welcome Bob\n") {
		t.Fatalf("no newline: %q, %v", client.String(), err)
	}
	err = greeting.Client(t.Context(), ns, strings.NewReader("\n"), &client)
	var ge *gopyro.Error
	if !errors.Is(err, greeting.ErrNoName) || !errors.As(err, &ge) || !ge.Remote || ge.Message != "tell me your name first" {
		t.Fatalf("empty name: %v", err)
	}

	cancel()
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Lookup(t.Context(), greeting.Name); !errors.Is(err, gopyro.ErrNotFound) {
		t.Fatalf("name left behind after the server stopped: %v", err)
	}
}

func TestNameServerDown(t *testing.T) {
	// A name server address where nothing listens.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := nameserver.NewClient(dead.Addr().String(), proxy.WithConnectTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	dead.Close()

	// A server that cannot publish its name gives up with the reason and
	// stops serving.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = greeting.Start(t.Context(), ln, ns, &testutil.Lines{})
	if !errors.Is(err, gopyro.ErrCommunication) {
		t.Fatalf("Start without a name server: %v", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the daemon still listens after Start failed")
	}
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }
