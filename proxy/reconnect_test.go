package proxy_test

import (
	"context"
	"errors"
	"iter"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver/nstest"
	"github.com/gopyro/gopyro/proxy"
)

type greeter struct{ name string }

func (g greeter) Who() string { return g.name }

// serveAt serves a greeter called name as object "g" on addr ("127.0.0.1:0"
// for any port) until the returned daemon is closed.
func serveAt(t *testing.T, addr, name string) (*daemon.Daemon, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.ServeOn(t, ln)
	if _, err := d.Register(greeter{name}, daemon.WithID("g")); err != nil {
		t.Fatal(err)
	}
	return d, ln.Addr().String()
}

// The first call after the daemon restarted on the same address goes
// through: the dead connection is noticed before anything is sent.
func TestFirstCallAfterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	d1, addr := serveAt(t, "127.0.0.1:0", "one")
	p, err := proxy.New("PYRO:g@" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, err := proxy.Call[string](ctx, p, "Who"); err != nil || got != "one" {
		t.Fatalf("before: %q, %v", got, err)
	}
	_ = d1.Close()
	serveAt(t, addr, "two")
	if got, err := proxy.Call[string](ctx, p, "Who"); err != nil || got != "two" {
		t.Fatalf("first call after the restart: %q, %v", got, err)
	}
}

// The first call after a PYRONAME target moved to another address goes
// through: the name is resolved again when the old address is gone.
func TestFirstCallAfterMove(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ns := nstest.Start(t)
	d1, _ := serveAt(t, "127.0.0.1:0", "one")
	u1, _ := d1.URI("g")
	if err := ns.Register(ctx, "test.mover", u1); err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New("PYRONAME:test.mover", proxy.WithResolver(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, err := proxy.Call[string](ctx, p, "Who"); err != nil || got != "one" {
		t.Fatalf("before: %q, %v", got, err)
	}
	_ = d1.Close()
	d2, _ := serveAt(t, "127.0.0.1:0", "two")
	u2, _ := d2.URI("g")
	if err := ns.Register(ctx, "test.mover", u2); err != nil {
		t.Fatal(err)
	}
	if got, err := proxy.Call[string](ctx, p, "Who"); err != nil || got != "two" {
		t.Fatalf("first call after the move: %q, %v", got, err)
	}
}

// Bind accepts the names the daemon answers to, once the proxy knows the
// metadata (issue 15, item 20).
func TestBindAliasAfterMetadata(t *testing.T) {
	_, p := serveObject(t, greeter{"one"})
	if _, err := p.Metadata(t.Context()); err != nil {
		t.Fatal(err)
	}
	var stub struct {
		Name func(ctx context.Context) (string, error) `pyro:"who"`
	}
	if err := p.Bind(&stub); err != nil {
		t.Fatal(err)
	}
	if got, err := stub.Name(t.Context()); err != nil || got != "one" {
		t.Fatalf("who = %q, %v", got, err)
	}
	var bad struct {
		Nope func(ctx context.Context) error
	}
	if err := p.Bind(&bad); err == nil {
		t.Fatal("Bind accepted a method the object does not have")
	}
}

// An error on a PYRONAME proxy says which name resolved to what (issue
// 15, item 8).
func TestErrorNamesTheName(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ns := nstest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there
	dead, _ := gopyro.Parse("PYRO:g@" + addr)
	if err := ns.Register(ctx, "test.dead", dead); err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New("PYRONAME:test.dead", proxy.WithResolver(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Call(ctx, "Who")
	if want := "PYRONAME:test.dead (resolved to PYRO:g@" + addr + ")"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v; want it to name %s", err, want)
	}
}

type counter struct{}

func (counter) Count(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// Bind makes stream fields: a field returning iter.Seq2[T, error] ranges
// over the method's stream; a stream field of another shape is refused at
// Bind time (issue 15, item 24).
func TestBindStream(t *testing.T) {
	d, p := serveObject(t, counter{})
	var stub struct {
		Count func(ctx context.Context, n int) iter.Seq2[int, error]
	}
	if err := p.Bind(&stub); err != nil {
		t.Fatal(err)
	}
	var got []int
	for v, err := range stub.Count(t.Context(), 5) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("Count = %v", got)
	}
	for v, err := range stub.Count(t.Context(), 1000) { // an early break closes the stream
		if err != nil || v == 2 {
			break
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the stream to close", func() bool { return d.OpenStreams() == 0 })
	var bad struct {
		Count func(ctx context.Context, n int) iter.Seq[int]
	}
	if err := p.Bind(&bad); !errors.Is(err, gopyro.ErrInvalid) || !strings.Contains(err.Error(), "iter.Seq2[T, error]") {
		t.Fatalf("Bind of an iter.Seq field: %v", err)
	}
}

type taker struct{}

func (taker) Take(p *proxy.Proxy) string { return p.URI().String() }
func (taker) Half(x float64) float64     { return x / 2 }

// Errors say what was wanted and what came, never the codec's codes;
// arguments and results are told apart and counted from 1 (issue 15,
// item 6).
func TestReadableDecodeErrors(t *testing.T) {
	_, p := serveObject(t, taker{})
	for _, c := range []struct {
		method string
		arg    any
		want   string
	}{
		{"Take", 42, "argument 1 (*proxy.Proxy): want an object reference (pass a daemon.Ref or a *proxy.Proxy), got the integer 42"},
		{"Half", "abc", `argument 1 (float64): want a number, got the string "abc"`},
	} {
		_, err := p.Call(t.Context(), c.method, c.arg)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "msgpack") {
			t.Errorf("%s(%v): %v; want %q", c.method, c.arg, err, c.want)
		}
	}
	res, err := p.Call(t.Context(), "Half", 3)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := res.Decode(&s); err == nil || !strings.Contains(err.Error(), "result 1 (string): want a string, got the number 1.5") {
		t.Errorf("decoding a float result into a string: %v", err)
	}
}

// Decoding a stream as a plain value says to read it as a stream (issue
// 15, item 6).
func TestDecodeStreamSaysStream(t *testing.T) {
	_, p := serveObject(t, counter{})
	_, err := proxy.Call[[]int](t.Context(), p, "Count", 3)
	if err == nil || !strings.Contains(err.Error(), "read it with proxy.Stream") || strings.Contains(err.Error(), "msgpack") {
		t.Fatalf("decoding a stream into []int: %v", err)
	}
}

// serveObject serves obj on 127.0.0.1 and returns its daemon and a proxy
// for it, closed when the test ends.
func serveObject(t testing.TB, obj any, opts ...daemon.Option) (*daemon.Daemon, *proxy.Proxy) {
	t.Helper()
	d := testutil.Serve(t, opts...)
	u, err := d.Register(obj)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.NewURI(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return d, p
}
