package interop_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopyro/gopyro/examples/interop"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver/nstest"
)

// env starts a name server and returns an Env whose parts print into
// separate Lines, or skips when no Python with Pyro4 exists.
func env(t *testing.T) (*interop.Env, func(part string) []string) {
	t.Helper()
	py, err := interop.FindPython(t.Context())
	if err != nil {
		t.Skip(err)
	}
	var mu sync.Mutex
	parts := map[string]*testutil.Lines{}
	part := func(name string) *testutil.Lines {
		mu.Lock()
		defer mu.Unlock()
		if parts[name] == nil {
			parts[name] = &testutil.Lines{}
		}
		return parts[name]
	}
	e := &interop.Env{Python: py, NS: nstest.Start(t), Out: func(name string) io.Writer { return part(name) }}
	t.Cleanup(func() { _ = e.Close() })
	return e, func(name string) []string { return part(name).All() }
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func check(t *testing.T, part string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s printed:\n%s\nwant:\n%s", part, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The cookbook's greeting client, unchanged, calls the Go server.
func TestGreeting(t *testing.T) {
	e, out := env(t)
	if err := interop.Greeting(ctx(t), e, "Ada"); err != nil {
		t.Fatal(err, out("python_client"))
	}
	check(t, "python_client", out("python_client"), []string{"Hi welcome Ada"})
}

// The cookbook's shop client, unchanged, shops at the Go shop; a Go error
// arrives as a Python exception.
func TestShop(t *testing.T) {
	e, out := env(t)
	if err := interop.Shop(ctx(t), e); err != nil {
		t.Fatal(err, out("python_client"))
	}
	check(t, "python_client", out("python_client"), []string{
		"*** Rashmi is doing shopping with BuyAnythingOnline:",
		"deposit 100, balance=100.00",
		"Rashmi is buying something for 37$",
		"Rashmi cannot buy a car: RuntimeError: insufficient funds: Rashmi has 63.00, the price is 1000.00",
		"*** Meeta is doing shopping with BuyAnythingOnline:",
		"deposit 50, balance=50.00",
		"deposit 50, balance=100.00",
		"Meeta cannot buy a car: RuntimeError: insufficient funds: Meeta has 100.00, the price is 1000.00",
		"The accounts in the BuyAnythingOnline:",
		" Meeta : 100.00",
		" Rashmi : 63.00",
	})
}

// The mixed ring: Go, Python, Go, started by the Python client.
func TestRing(t *testing.T) {
	e, out := env(t)
	if err := interop.Ring(ctx(t), e); err != nil {
		t.Fatal(err, out("python_client"), out("python_server_2"))
	}
	check(t, "python_client", out("python_client"), []string{
		"Result=['passed on from 1', 'passed on from 2', 'passed on from 3', 'complete at 1']",
	})
	py := strings.Join(out("python_server_2"), "\n")
	if !strings.Contains(py, "I'm 2, passing to 3") {
		t.Errorf("the Python server printed:\n%s", py)
	}
}

// The cookbook's chain client, unchanged, on a ring of Go servers.
func TestGoRing(t *testing.T) {
	e, out := env(t)
	if err := interop.GoRing(ctx(t), e); err != nil {
		t.Fatal(err, out("python_client"))
	}
	check(t, "python_client", out("python_client"), []string{
		"Result=['passed on from 1', 'passed on from 2', 'passed on from 3', 'complete at 1']",
	})
}

// A Go client calls Pyro's own echo server through PYRONAME.
func TestEcho(t *testing.T) {
	e, out := env(t)
	if err := interop.Echo(ctx(t), e); err != nil {
		t.Fatal(err, out("python_echoserver"))
	}
	got := out("go_client")
	want := []string{
		"echo: [hello from Go 42 2.5]",
		"error: call error PYRONAME:test.echoserver (resolved to PYRO:test.echoserver@127.0.0.1:",
		"generator: [one two three]",
	}
	if len(got) != 3 || got[0] != want[0] || !strings.HasPrefix(got[1], want[1]) ||
		!strings.HasSuffix(got[1], "remote error: remote builtins.ValueError: expected error from echoserver error() method") || got[2] != want[2] {
		t.Errorf("the Go client printed:\n%s", strings.Join(got, "\n"))
	}
}
