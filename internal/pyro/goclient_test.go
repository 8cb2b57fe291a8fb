package pyro_test

import (
	"context"
	"errors"
	"iter"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/proxy"
)

// pythonServer starts testdata/server.py for Pyro protocol proto ("4" or
// "5") and returns the URI of its object "thing".
func pythonServer(t *testing.T, proto string, args ...string) string {
	t.Helper()
	py, path := pyroPython(t, proto)
	t.Setenv("PYTHONPATH", strings.Join(path, ":"))
	p := testutil.Start(t, nil, py[0], append([]string{"testdata/server.py", proto}, args...)...)
	line := p.Stdout.Wait(t, testutil.Prefix("uri "))
	return strings.TrimPrefix(line, "uri ")
}

// Doubler is a Go object a Python method calls back.
type Doubler struct{}

func (Doubler) Double(x int) int { return 2 * x }

// TestGoClientPython calls a Python Pyro4 and Pyro5 daemon from a gopyro
// proxy, with each serializer: nothing tells the proxy it is Python.
func TestGoClientPython(t *testing.T) {
	for _, proto := range []string{"4", "5"} {
		t.Run("Pyro"+proto, func(t *testing.T) {
			uri := pythonServer(t, proto)
			for _, ser := range []string{"serpent", "json", "marshal", "msgpack"} {
				t.Run(ser, func(t *testing.T) { testGoClient(t, proto, uri, ser) })
			}
		})
	}
}

func testGoClient(t *testing.T, proto, uri, ser string) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, err := proxy.New(uri, proxy.WithPyroSerializer(ser))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// Go values as Python sees them.
	describe := []struct {
		arg  any
		want string
	}{
		{int64(42), "int:42"},
		{uint8(7), "int:7"},
		{-1.5, "float:-1.5"},
		{"héllo", "str:'héllo'"},
		{true, "bool:True"},
		{nil, "NoneType:None"},
		{[]int{1, 2}, "list:[1, 2]"},
		{map[string]int{"b": 2, "a": 1}, "dict:[('a', 1), ('b', 2)]"},
		{struct{ Name string }{"Ada"}, "dict:[('Name', 'Ada')]"},
		{new(big.Int).Lsh(big.NewInt(1), 70), "int:1180591620717411303424"},
	}
	switch ser {
	case "serpent": // as with Pyro's own clients: the Python side gets serpent's dict
		describe = append(describe, struct {
			arg  any
			want string
		}{[]byte{0, 1, 0xff}, "dict:[('data', 'AAH/'), ('encoding', 'base64')]"})
	case "marshal", "msgpack":
		describe = append(describe, struct {
			arg  any
			want string
		}{[]byte{0, 1, 0xff}, `bytes:b'\x00\x01\xff'`})
	}
	for _, c := range describe {
		got, err := proxy.Call[string](ctx, p, "describe", c.arg)
		if err != nil {
			t.Fatalf("describe(%#v): %v", c.arg, err)
		}
		if _, isBig := c.arg.(*big.Int); isBig && ser == "msgpack" && proto == "4" {
			// Pyro4 4.82 decodes call arguments without its ext hook: a
			// big int arrives as msgpack's ExtType, from Pyro's own
			// clients too.
			continue
		}
		if got != c.want {
			t.Errorf("describe(%#v) = %s, want %s", c.arg, got, c.want)
		}
	}

	// Go names reach Python's: Describe is describe, OpenStreams open_streams.
	if got, err := proxy.Call[string](ctx, p, "Describe", 1); err != nil || got != "int:1" {
		t.Errorf("Describe = %q, %v", got, err)
	}
	if _, err := proxy.Call[int](ctx, p, "OpenStreams"); err != nil {
		t.Errorf("OpenStreams: %v", err)
	}

	// Python values into Go types.
	if n, err := proxy.Call[int32](ctx, p, "add", 2, 3); err != nil || n != 5 {
		t.Errorf("add = %v, %v; want 5", n, err)
	}
	if _, err := proxy.Call[int8](ctx, p, "add", 100, 100); !errors.Is(err, gopyro.ErrArgument) || !strings.Contains(err.Error(), "int8") {
		t.Errorf("add into int8 = %v; want a range error", err)
	}
	if b, err := proxy.Call[*big.Int](ctx, p, "echo", new(big.Int).Lsh(big.NewInt(1), 70)); err != nil || b.BitLen() != 71 {
		t.Errorf("echo(2**70) = %v, %v", b, err)
	}
	if ser != "json" {
		if b, err := proxy.Call[[]byte](ctx, p, "echo", []byte("raw\x00")); err != nil || string(b) != "raw\x00" {
			t.Errorf("echo(bytes) = %q, %v", b, err)
		}
	}
	res, err := p.Call(ctx, "pair")
	if err != nil {
		t.Fatal(err)
	}
	var s string
	var n int
	if err := res.Decode(&s, &n); err != nil || s != "a" || n != 2 {
		t.Errorf("pair = %q, %d, %v", s, n, err)
	}
	type person struct {
		Name string
		Age  int
		Tags []string
	}
	if got, err := proxy.Call[person](ctx, p, "person"); err != nil || !reflect.DeepEqual(got, person{"Ada", 36, []string{"x", "y"}}) {
		t.Errorf("person = %+v, %v", got, err)
	}
	if vals, err := mustCall(t, ctx, p, "person").Values(); err != nil || vals[0].(map[string]any)["name"] != "Ada" {
		t.Errorf("person Values = %v, %v", vals, err)
	}

	// Python exceptions.
	_, err = p.Call(ctx, "fail", "no good")
	ge, ok := errors.AsType[*gopyro.Error](err)
	if !ok || !ge.Remote || ge.RemoteType != "builtins.ValueError" || ge.Message != "no good" || !strings.Contains(ge.Stack, "Traceback") || !errors.Is(err, gopyro.ErrRemote) {
		t.Errorf("fail: %#v", err)
	}
	if _, err := p.Call(ctx, "nosuch"); !errors.Is(err, gopyro.ErrNotFound) {
		t.Errorf("nosuch: %v; want not found", err)
	}

	// Generators are streams; a loop that stops early closes the stream.
	var items []int
	for v, err := range proxy.Stream[int](ctx, p, "count", 4) {
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, v)
	}
	if !reflect.DeepEqual(items, []int{0, 1, 2, 3}) {
		t.Errorf("count = %v", items)
	}
	for v, err := range proxy.Stream[int](ctx, p, "count", 100) {
		if err != nil || v == 1 {
			break
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the stream closed", func() bool {
		n, err := proxy.Call[int](ctx, p, "open_streams")
		return err == nil && n == 0
	})

	// Oneway.
	if err := p.Oneway(ctx, "record", "one-"+ser); err != nil {
		t.Fatal(err)
	}
	if rec, err := proxy.Call[[]string](ctx, p, "recorded_items", 1); err != nil || !strings.Contains(strings.Join(rec, " "), "one-"+ser) {
		t.Errorf("recorded = %v, %v", rec, err)
	}

	// A batch stops at the first failure.
	b := p.Batch()
	b.Call("echo", "x")
	b.Call("add", 1, 2)
	if ser != "marshal" {
		// A Python daemon cannot send the result of a failed batch in
		// marshal (its _ExceptionWrapper is not marshallable).
		b.Call("fail", "in batch")
		b.Call("echo", "y")
	}
	rs, err := b.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var x string
	var sum int
	if err := rs[0].Decode(&x); err != nil || x != "x" {
		t.Errorf("batch[0] = %q, %v", x, err)
	}
	if err := rs[1].Decode(&sum); err != nil || sum != 3 {
		t.Errorf("batch[1] = %d, %v", sum, err)
	}
	if ser != "marshal" {
		if ge, ok := errors.AsType[*gopyro.Error](rs[2].Err); !ok || ge.RemoteType != "builtins.ValueError" || ge.Message != "in batch" {
			t.Errorf("batch[2] = %v", rs[2].Err)
		}
		if !errors.Is(rs[3].Err, proxy.ErrSkipped) {
			t.Errorf("batch[3] = %v", rs[3].Err)
		}
	}

	// Autoproxy: a registered Python object comes back as a proxy.
	// (Python daemons do not autoproxy in marshal, for Python clients
	// either: they get a dict of the object's attributes.)
	if ser != "marshal" {
		var child *proxy.Proxy
		if err := mustCall(t, ctx, p, "child").Decode(&child); err != nil {
			t.Fatal(err)
		}
		defer child.Close()
		if name, err := proxy.Call[string](ctx, child, "name"); err != nil || name != "child" {
			t.Errorf("child.name = %q, %v", name, err)
		}
	}

	// A callback: Python calls a Go object through the proxy it was given.
	d := testutil.Serve(t)
	du, err := d.Register(Doubler{})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := proxy.NewURI(du)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := proxy.Call[int](ctx, p, "call_back", cb, 21); err != nil || got != 42 {
		t.Errorf("call_back = %d, %v", got, err)
	}

	// Built-ins: ping and metadata.
	if err := p.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
	md, err := p.Metadata(ctx)
	if err != nil || md.ID != "thing" || !strings.Contains(strings.Join(md.Methods, " "), "describe") || !reflect.DeepEqual(md.Oneway, []string{"record"}) {
		t.Errorf("metadata = %+v, %v", md, err)
	}

	// A typed stub, checked against the Python metadata by Go names.
	var stub struct {
		Describe func(ctx context.Context, x any) (string, error)
		Add      func(ctx context.Context, a, b int) (int, error)
		Count    func(ctx context.Context, n int) iter.Seq2[int, error] // a Python generator
	}
	if err := p.Bind(&stub); err != nil {
		t.Fatal(err)
	}
	if got, err := stub.Add(ctx, 40, 2); err != nil || got != 42 {
		t.Errorf("stub.Add = %d, %v", got, err)
	}
	total := 0
	for v, err := range stub.Count(ctx, 5) {
		if err != nil {
			t.Fatal(err)
		}
		total += v
	}
	if total != 10 {
		t.Errorf("the sum of stub.Count(5) = %d", total)
	}

	// A timeout ends the call and its connection; the next call redials.
	tctx, tcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = p.Call(tctx, "slow", 5)
	tcancel()
	if !errors.Is(err, gopyro.ErrTimeout) {
		t.Errorf("slow: %v; want a timeout", err)
	}
	if got, err := proxy.Call[string](ctx, p, "echo", "again"); err != nil || got != "again" {
		t.Errorf("after the timeout: %q, %v", got, err)
	}
}

func mustCall(t *testing.T, ctx context.Context, p *proxy.Proxy, method string, args ...any) *proxy.Results {
	t.Helper()
	res, err := p.Call(ctx, method, args...)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return res
}

// TestGoClientPythonEchoServer calls Pyro's own echo server, registered
// by itself in gopyro's name server, through PYRONAME.
func TestGoClientPythonEchoServer(t *testing.T) {
	for _, c := range []struct{ proto, module, errText string }{
		{"4", "Pyro4.test.echoserver", "expected error from echoserver error() method"},
		{"5", "Pyro5.utils.echoserver", "this is the generated error from echoserver echo() method"},
	} {
		t.Run("Pyro"+c.proto, func(t *testing.T) {
			var path []string
			if c.proto == "5" {
				path = []string{pyro5Path(t)}
			}
			py := python(t, c.module, path...)
			_, nsPort, _ := serve(t)
			t.Setenv("PYTHONPATH", strings.Join(path, ":"))
			t.Setenv("PYRO_NS_HOST", "127.0.0.1")
			t.Setenv("PYRO_NS_PORT", strconv.Itoa(nsPort))
			srv := testutil.Start(t, nil, py[0], "-m", c.module, "-n", "-H", "127.0.0.1", "-p", "0")
			t.Cleanup(func() { _ = srv.Cmd.Process.Kill() }) // Pyro4's echo server takes 10 s to heed an interrupt
			srv.Stdout.Wait(t, testutil.Prefix("echoserver running"))
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			p, err := proxy.New("PYRONAME:test.echoserver@127.0.0.1:" + strconv.Itoa(nsPort))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got, err := proxy.Call[[]any](ctx, p, "echo", []any{"hi", 1, 2.5}); err != nil || !reflect.DeepEqual(got, []any{"hi", int64(1), 2.5}) {
				t.Errorf("echo = %#v, %v", got, err)
			}
			_, err = p.Call(ctx, "error")
			if ge, ok := errors.AsType[*gopyro.Error](err); !ok || ge.RemoteType != "builtins.ValueError" || ge.Message != c.errText {
				t.Errorf("error: %v", err)
			}
			var gen []string
			for v, err := range proxy.Stream[string](ctx, p, "generator") {
				if err != nil {
					t.Fatal(err)
				}
				gen = append(gen, v)
			}
			if !reflect.DeepEqual(gen, []string{"one", "two", "three"}) {
				t.Errorf("generator = %v", gen)
			}
		})
	}
}

// TestGoClientPythonFirstOneway makes a oneway call the first call to a
// Python daemon: a oneway request gets no answer, so the proxy must learn
// the protocol before it is lost.
func TestGoClientPythonFirstOneway(t *testing.T) {
	uri := pythonServer(t, "4")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p, err := proxy.New(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Oneway(ctx, "record", "first"); err != nil {
		t.Fatal(err)
	}
	if rec, err := proxy.Call[[]string](ctx, p, "recorded_items", 1); err != nil || !reflect.DeepEqual(rec, []string{"first"}) {
		t.Errorf("recorded = %v, %v", rec, err)
	}
}

// TestGoClientPythonToken calls Python daemons that want a secret: Pyro4's
// HMAC key and Pyro5's handshake are the proxy's token.
func TestGoClientPythonToken(t *testing.T) {
	for _, proto := range []string{"4", "5"} {
		t.Run("Pyro"+proto, func(t *testing.T) {
			uri := pythonServer(t, proto, "s3cret")
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			for _, c := range []struct {
				token string
				ok    bool
			}{{"", false}, {"wrong", false}, {"s3cret", true}} {
				p, err := proxy.New(uri, proxy.WithToken(c.token))
				if err != nil {
					t.Fatal(err)
				}
				got, err := proxy.Call[string](ctx, p, "echo", "x")
				p.Close()
				switch {
				case c.ok && (err != nil || got != "x"):
					t.Errorf("token %q: %q, %v", c.token, got, err)
				case !c.ok && !errors.Is(err, gopyro.ErrSecurity):
					t.Errorf("token %q: %v; want a security error", c.token, err)
				}
			}
		})
	}
}
