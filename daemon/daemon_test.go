package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/proxy"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type Calc struct {
	oneway chan string
	calls  atomic.Int64
}

type Point struct {
	X, Y int
	Tag  string
}

func (c *Calc) Add(a, b int) int       { c.calls.Add(1); return a + b }
func (c *Calc) Echo(s string) string   { return s }
func (c *Calc) Int8(v int8) int8       { return v }
func (c *Calc) Uint(v uint) uint       { return v }
func (c *Calc) Half(v float32) float32 { return v / 2 }
func (c *Calc) Sum(xs ...int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}
func (c *Calc) Move(p Point, dx int) Point { p.X += dx; return p }
func (c *Calc) Lens(m map[string][]int8) []int {
	out := []int{}
	for _, v := range m {
		out = append(out, len(v))
	}
	return out
}
func (c *Calc) Pair() (string, int, error) { return "two", 2, nil }
func (c *Calc) Bytes(b []byte) []byte      { return append(b, '!') }
func (c *Calc) Panic() error               { panic("boom") }
func (c *Calc) OnewayEcho(s string)        { c.oneway <- s }
func (c *Calc) Div(a, b float64) (float64, error) {
	if b == 0 {
		return 0, errors.New("division by zero")
	}
	return a / b, nil
}
func (c *Calc) Missing() error {
	return gopyro.NewError(gopyro.CodeNotFound, "calc.Missing", "nothing here")
}
func (c *Calc) Info(ctx context.Context) (string, bool, error) {
	ci, ok := daemon.CallInfoFrom(ctx)
	if !ok {
		return "", false, errors.New("no call info")
	}
	_, hasDeadline := ctx.Deadline()
	return ci.CorrelationID + "|" + ci.Method + "|" + ci.RemoteAddr.Network(), hasDeadline, nil
}
func (c *Calc) Slow(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// not callable remotely
func (c *Calc) Func() func(int) int { return nil }

func setup(t *testing.T, opts ...daemon.Option) (*Calc, *proxy.Proxy, *daemon.Daemon) {
	t.Helper()
	d := testutil.Serve(t, opts...)
	c := &Calc{oneway: make(chan string, 10)}
	uri, err := d.Register(c, daemon.WithID("calc"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.NewURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return c, p, d
}

func TestCalls(t *testing.T) {
	_, p, _ := setup(t)
	ctx := t.Context()
	if got, err := proxy.Call[int](ctx, p, "Add", 2, 40); err != nil || got != 42 {
		t.Fatalf("Add = %v, %v", got, err)
	}
	// aliases reach the same method
	for _, name := range []string{"echo", "Echo"} {
		if got, err := proxy.Call[string](ctx, p, name, "hi"); err != nil || got != "hi" {
			t.Fatalf("%s = %q, %v", name, got, err)
		}
	}
	if got, err := proxy.Call[float32](ctx, p, "Half", 3); err != nil || got != 1.5 {
		t.Fatalf("Half(int 3) = %v, %v", got, err)
	}
	if got, err := proxy.Call[int](ctx, p, "Sum", 1, 2, 3, 4); err != nil || got != 10 {
		t.Fatalf("Sum = %v, %v", got, err)
	}
	if got, err := proxy.Call[int](ctx, p, "Sum"); err != nil || got != 0 {
		t.Fatalf("Sum() = %v, %v", got, err)
	}
	pt, err := proxy.Call[Point](ctx, p, "Move", Point{X: 1, Y: 2, Tag: "p"}, 10)
	if err != nil || pt != (Point{11, 2, "p"}) {
		t.Fatalf("Move = %+v, %v", pt, err)
	}
	lens, err := proxy.Call[[]int](ctx, p, "Lens", map[string][]int8{"a": {1, 2}})
	if err != nil || len(lens) != 1 || lens[0] != 2 {
		t.Fatalf("Lens = %v, %v", lens, err)
	}
	b, err := proxy.Call[[]byte](ctx, p, "Bytes", []byte("hey"))
	if err != nil || string(b) != "hey!" {
		t.Fatalf("Bytes = %q, %v", b, err)
	}
	res, err := p.Call(ctx, "Pair")
	if err != nil {
		t.Fatal(err)
	}
	var s string
	var n int64
	if err := res.Decode(&s, &n); err != nil || s != "two" || n != 2 {
		t.Fatalf("Pair decode = %q %d %v", s, n, err)
	}
	vals, err := res.Values()
	if err != nil || fmt.Sprint(vals) != "[two 2]" {
		t.Fatalf("Pair values = %v %v", vals, err)
	}
	if got, err := proxy.Call[float64](ctx, p, "div", 1.0, 4.0); err != nil || got != 0.25 {
		t.Fatalf("div = %v %v", got, err)
	}
}

func TestCallInfoAndDeadline(t *testing.T) {
	_, p, _ := setup(t)
	ctx, cancel := context.WithTimeout(proxy.WithCorrelationID(t.Context(), "corr-1"), time.Minute)
	defer cancel()
	res, err := p.Call(ctx, "info")
	if err != nil {
		t.Fatal(err)
	}
	var info string
	var hasDeadline bool
	if err := res.Decode(&info, &hasDeadline); err != nil {
		t.Fatal(err)
	}
	if info != "corr-1|info|tcp" || !hasDeadline {
		t.Fatalf("info = %q deadline=%v", info, hasDeadline)
	}
}

func TestRemoteErrors(t *testing.T) {
	_, p, d := setup(t)
	ctx := t.Context()
	tests := []struct {
		name   string
		method string
		args   []any
		code   gopyro.Code
		want   string
	}{
		{"returned error", "Div", []any{1.0, 0.0}, gopyro.CodeRemote, "division by zero"},
		{"panic", "Panic", nil, gopyro.CodeRemote, "boom"},
		{"coded error", "Missing", nil, gopyro.CodeNotFound, "nothing here"},
		{"unknown method", "Nope", nil, gopyro.CodeNotFound, `no method "Nope"`},
		{"too few args", "Add", []any{1}, gopyro.CodeArgument, "takes 2 arguments, got 1"},
		{"too many args", "Echo", []any{"a", "b"}, gopyro.CodeArgument, "takes 1 argument, got 2"},
		{"wrong type", "Echo", []any{42}, gopyro.CodeArgument, "argument 1 (string): want a string, got the integer 42"},
		{"int8 overflow", "Int8", []any{300}, gopyro.CodeArgument, "300 overflows int8"},
		{"negative uint", "Uint", []any{-1}, gopyro.CodeArgument, "negative"},
		{"fraction to int", "Add", []any{1.5, 2}, gopyro.CodeArgument, "not an integer"},
		{"nested overflow", "Lens", []any{map[string][]int{"a": {1000}}}, gopyro.CodeArgument, "1000 overflows int8"},
		{"unserved method", "Func", nil, gopyro.CodeNotFound, `no method "Func"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Call(ctx, tt.method, tt.args...)
			var ge *gopyro.Error
			if !errors.As(err, &ge) {
				t.Fatalf("err = %v (%T), want *gopyro.Error", err, err)
			}
			if ge.Code != tt.code || !ge.Remote || !strings.Contains(ge.Error(), tt.want) {
				t.Fatalf("err = %v (code %v remote %v), want code %v containing %q", err, ge.Code, ge.Remote, tt.code, tt.want)
			}
		})
	}
	var ge *gopyro.Error
	_, err := p.Call(ctx, "Div", 1.0, 0.0)
	if !errors.As(err, &ge) || ge.RemoteType != "*errors.errorString" || ge.Message != "division by zero" {
		t.Fatalf("remote type/message = %q %q", ge.RemoteType, ge.Message)
	}
	if !errors.Is(err, gopyro.ErrRemote) {
		t.Fatal("errors.Is(ErrRemote) failed")
	}
	_, err = p.Call(ctx, "Missing")
	if !errors.Is(err, gopyro.ErrNotFound) || !errors.Is(err, gopyro.NewError(gopyro.CodeNotFound, "calc.Missing", "")) {
		t.Fatalf("coded error lost its code/type: %v", err)
	}
	// The daemon still serves after all that.
	if got, err := proxy.Call[int](ctx, p, "Add", 1, 1); err != nil || got != 2 {
		t.Fatalf("after errors: %v %v", got, err)
	}
	// Unknown object.
	u, _ := d.URI("calc")
	u.Object = "nope"
	q, _ := proxy.NewURI(u)
	defer q.Close()
	if _, err := q.Call(ctx, "Add", 1, 2); !errors.Is(err, gopyro.ErrNotFound) || !strings.Contains(err.Error(), `unknown object "nope"`) {
		t.Fatalf("unknown object: %v", err)
	}
}

func TestBind(t *testing.T) {
	_, p, _ := setup(t)
	var calc struct {
		Add    func(a, b int) (int, error)
		Div    func(ctx context.Context, a, b float64) (float64, error)
		Pair   func(context.Context) (string, int, error)
		Sum    func(xs ...int) (int, error)
		Greet  func(s string) (string, error) `pyro:"echo"`
		Bad    func(s string, t string) error `pyro:"Echo"`
		Result func() (string, string, error) `pyro:"Pair"`
		Skip   func()                         `pyro:"-"`
		Other  int
	}
	if err := p.Bind(&calc); err != nil {
		t.Fatal(err)
	}
	if n, err := calc.Add(1, 2); n != 3 || err != nil {
		t.Fatalf("Add = %v %v", n, err)
	}
	if _, err := calc.Div(t.Context(), 1, 0); !errors.Is(err, gopyro.ErrRemote) {
		t.Fatalf("Div err = %v", err)
	}
	if s, n, err := calc.Pair(t.Context()); s != "two" || n != 2 || err != nil {
		t.Fatalf("Pair = %v %v %v", s, n, err)
	}
	if n, err := calc.Sum(1, 2, 3); n != 6 || err != nil {
		t.Fatalf("Sum = %v %v", n, err)
	}
	if s, err := calc.Greet("x"); s != "x" || err != nil {
		t.Fatalf("Greet = %v %v", s, err)
	}
	if err := calc.Bad("a", "b"); !errors.Is(err, gopyro.ErrArgument) {
		t.Fatalf("mismatched arity: %v", err)
	}
	if _, _, err := calc.Result(); !errors.Is(err, gopyro.ErrArgument) {
		t.Fatalf("mismatched result type: %v", err)
	}

	// With metadata known, Bind refuses a method that does not exist.
	if _, err := p.Metadata(t.Context()); err != nil {
		t.Fatal(err)
	}
	var bad struct{ Nope func() error }
	if err := p.Bind(&bad); !errors.Is(err, gopyro.ErrNotFound) {
		t.Fatalf("Bind unknown with metadata: %v", err)
	}
	var noErr struct{ Add func(a, b int) int }
	if err := p.Bind(&noErr); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("Bind without error result: %v", err)
	}
}

func TestOnewayAndFuture(t *testing.T) {
	c, p, _ := setup(t)
	if err := p.Oneway(t.Context(), "oneway_echo", "fire"); err != nil {
		t.Fatal(err)
	}
	if got := <-c.oneway; got != "fire" {
		t.Fatalf("oneway got %q", got)
	}
	f := p.Go(t.Context(), "Add", 20, 22)
	res, err := f.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := res.Decode(&n); err != nil || n != 42 {
		t.Fatalf("future = %v %v", n, err)
	}
}

func TestTimeout(t *testing.T) {
	_, p, _ := setup(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Call(ctx, "Slow", time.Minute)
	if !errors.Is(err, gopyro.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// the connection is still usable
	if got, err := proxy.Call[int](t.Context(), p, "Add", 1, 2); err != nil || got != 3 {
		t.Fatalf("after timeout: %v %v", got, err)
	}
}

func TestConcurrentProxy(t *testing.T) {
	c, p, _ := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			for i := range 50 {
				got, err := proxy.Call[int](t.Context(), p, "Add", g, i)
				if err != nil {
					errs <- err
					return
				}
				if got != g+i {
					errs <- fmt.Errorf("Add(%d,%d) = %d", g, i, got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := c.calls.Load(); n != 32*50 {
		t.Fatalf("calls = %d", n)
	}
}

// Calc2 has value-receiver methods: it registers as a value.
type Calc2 struct{}

func (Calc2) Twice(n int) int { return 2 * n }

func TestRegisterBeforeServe(t *testing.T) {
	d, err := daemon.New()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	u, err := d.Register(&Calc{}, daemon.WithID("early"))
	if !errors.Is(err, gopyro.ErrInvalid) || !u.IsZero() {
		t.Fatalf("Register before Serve: %v, %v; want an invalid error and no URI", u, err)
	}
	if slices.Contains(d.Registered(), "early") {
		t.Fatal("a failed Register left the object registered")
	}
	a, err := daemon.New(daemon.WithAdvertise("example.com:7000"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if u, err := a.Register(&Calc{}, daemon.WithID("early")); err != nil || u.String() != "PYRO:early@example.com:7000" {
		t.Fatalf("Register with an advertised address: %v %v", u, err)
	}
}

func TestRegister(t *testing.T) {
	d := testutil.Serve(t)
	c := &Calc{}
	u1, err := d.Register(c)
	if err != nil || !strings.HasPrefix(u1.Object, "obj_") || u1.Host != "127.0.0.1" || u1.Port == 0 {
		t.Fatalf("auto id: %v %v", u1, err)
	}
	if again, err := d.Register(c); err != nil || again.String() != u1.String() {
		t.Fatalf("the same value registered twice: %v %v, want %v", again, err, u1)
	}
	if _, err := d.Register(c, daemon.WithID("x")); !errors.Is(err, gopyro.ErrExists) || !strings.Contains(err.Error(), u1.Object) {
		t.Fatalf("the same value under a second id: %v", err)
	}
	if _, err := d.Register(&Calc{}, daemon.WithID("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Register(&Calc{}, daemon.WithID("x")); !errors.Is(err, gopyro.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := d.Register(&Calc{}, daemon.WithID("x"), daemon.Force()); err != nil {
		t.Fatalf("forced: %v", err)
	}
	g1, err := d.Register(Calc2{})
	if g2, err2 := d.Register(Calc2{}); err != nil || err2 != nil || g1.String() != g2.String() {
		t.Fatalf("equal comparable values: %v %v / %v %v", g1, err, g2, err2)
	}
	if _, err := d.Register(c, daemon.WithID("bad id")); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("bad id: %v", err)
	}
	type onlyChans struct{}
	_, err = d.Register(struct{ onlyChans }{})
	if !errors.Is(err, gopyro.ErrInvalid) || !strings.Contains(err.Error(), "no remotely callable methods") {
		t.Fatalf("no methods: %v", err)
	}
	_, err = d.Register(badMethods{})
	if err == nil || !strings.Contains(err.Error(), "Feed: parameter 0 (chan int)") || !strings.Contains(err.Error(), "Fn: result 0") {
		t.Fatalf("bad methods not named: %v", err)
	}
	_, err = d.Register(Calc{})
	if err == nil || !strings.Contains(err.Error(), "pointer receivers") {
		t.Fatalf("value with pointer methods: %v", err)
	}
	if _, err := d.Register(c, daemon.WithID("y"), daemon.WithOneway("Nope")); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("unknown oneway: %v", err)
	}
	if err := d.Unregister("x"); err != nil {
		t.Fatal(err)
	}
	if err := d.Unregister("x"); !errors.Is(err, gopyro.ErrNotFound) {
		t.Fatalf("unregister twice: %v", err)
	}
	if err := d.Unregister(gopyro.DaemonID); !errors.Is(err, gopyro.ErrNotFound) {
		t.Fatalf("unregister built-in: %v", err)
	}
}

type badMethods struct{}

func (badMethods) Feed(chan int) error { return nil }
func (badMethods) Fn() func()          { return nil }

func TestBuiltinDaemonObject(t *testing.T) {
	d := testutil.Serve(t)
	if _, err := d.Register(&Calc{}, daemon.WithID("calc"), daemon.WithOneway("OnewayEcho")); err != nil {
		t.Fatal(err)
	}
	u, _ := d.URI("calc")
	p, _ := proxy.NewURI(u)
	defer p.Close()
	if err := p.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	md, err := p.Metadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(md.Methods, ","), "Add,Bytes,Div") || len(md.Oneway) != 1 || md.Oneway[0] != "OnewayEcho" || md.Mode != "single" {
		t.Fatalf("metadata = %+v", md)
	}
	du := u
	du.Object = gopyro.DaemonID
	dp, _ := proxy.NewURI(du)
	defer dp.Close()
	ids, err := proxy.Call[[]string](t.Context(), dp, "registered")
	if err != nil || strings.Join(ids, ",") != "Pyro.Daemon,calc" {
		t.Fatalf("registered = %v %v", ids, err)
	}
	if _, err := dp.Call(t.Context(), "get_metadata", "nope"); !errors.Is(err, gopyro.ErrNotFound) {
		t.Fatalf("metadata of unknown: %v", err)
	}
}

type panicky struct{}

func (panicky) Boom() { panic("boom") }

// A daemon given no logger logs to slog.Default: a panicking method's
// stack is not lost (issue 15, item 28).
func TestDefaultLogger(t *testing.T) {
	var buf testutil.Lines
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(old)
	d := testutil.Serve(t)
	u, err := d.Register(panicky{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.NewURI(u)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Call(t.Context(), "Boom"); err == nil {
		t.Fatal("Boom did not fail")
	}
	if s := buf.String(); !strings.Contains(s, "method panicked") || !strings.Contains(s, "Boom") {
		t.Fatalf("the default logger got: %q", s)
	}
}
