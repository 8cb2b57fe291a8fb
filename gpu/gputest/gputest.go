// Package gputest is the conformance suite of GPU compute service
// backends. A backend's tests call [Run] with a function that makes a
// fresh backend; the suite serves it on a loopback daemon and checks every
// operation, element type, shape error and limit through the client API
// against a plain reference implementation.
package gputest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/proxy"
)

// NewBackend makes a fresh backend for one service.
type NewBackend func(t *testing.T) gpu.Backend

// Env is a service under test: its daemon, the service, its URI.
type Env struct {
	Daemon  *daemon.Daemon
	Service *gpu.Service
	URI     string
}

// Start serves a service on b with cfg on a loopback daemon; everything
// stops when the test ends.
func Start(t testing.TB, b gpu.Backend, cfg gpu.Config) *Env {
	t.Helper()
	s, err := gpu.NewService(t.Context(), b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() }) // after the daemon's cleanup: they run last first
	d := testutil.Serve(t)
	u, err := s.Register(d)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Daemon: d, Service: s, URI: u.String()}
}

// Dial connects a client to e; it closes when the test ends.
func (e *Env) Dial(t testing.TB) *gpu.Client {
	t.Helper()
	c, err := gpu.Dial(context.Background(), e.URI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// WaitEmpty waits until the service holds no array and no memory.
func (e *Env) WaitEmpty(t testing.TB) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "the service still holds arrays", func() bool {
		in := e.Service.Info()
		return in.Arrays == 0 && in.Used == 0
	})
}

// Run runs the whole suite.
func Run(t *testing.T, newBackend NewBackend) {
	tests := []struct {
		name string
		f    func(t *testing.T, nb NewBackend)
	}{
		{"Info", testInfo},
		{"Transfer", testTransfer},
		{"Gemm", testGemm},
		{"Map", testMap},
		{"MapInto", testMapInto},
		{"Reduce", testReduce},
		{"Conveniences", testConveniences},
		{"Cookbook", testCookbook},
		{"BadInput", testBadInput},
		{"Limits", testLimits},
		{"Kernels", testKernels},
		{"SessionCleanup", testCleanup},
		{"Sharing", testSharing},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer catch(t)
			tc.f(t, newBackend)
		})
	}
}

var bg = context.Background()

// failed carries a failure of must or check to the test's recover.
type failed struct {
	err  error
	file string
	line int
}

// must returns v, or ends the test (through catch) when err is not nil.
func must[T any](v T, err error) T {
	if err != nil {
		_, file, line, _ := runtime.Caller(1)
		panic(failed{err, file, line})
	}
	return v
}

// check ends the test (through catch) when err is not nil.
func check(err error) {
	if err != nil {
		_, file, line, _ := runtime.Caller(1)
		panic(failed{err, file, line})
	}
}

// catch turns a failure of must or check into t.Fatal.
func catch(t testing.TB) {
	if r := recover(); r != nil {
		f, ok := r.(failed)
		if !ok {
			panic(r)
		}
		t.Fatalf("%s:%d: %v", filepath.Base(f.file), f.line, f.err)
	}
}

// wantErr checks that err matches kind and mentions each of words.
func wantErr(t testing.TB, what string, err error, kind error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("%s: error %q (%T) does not match %v", what, err, err, kind)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%s: error %q does not mention %q", what, err, w)
		}
	}
}

func testInfo(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c := e.Dial(t)
	in := must(c.Info(bg))
	if in.Backend == "" || len(in.Devices) == 0 || in.Devices[0].Name == "" || in.Devices[0].Cores < 1 {
		t.Fatalf("info: %+v", in)
	}
	if in.MaxMemory <= 0 || in.SessionMemory <= 0 || in.MaxArray <= 0 {
		t.Fatalf("limits: %+v", in)
	}
}

// data makes n test values of T: floats in [-4, 4), integers in [-50, 50],
// with no zeros when nonzero.
func data[T elem](r *rand.Rand, n int, nonzero bool) []T {
	out := make([]T, n)
	for i := range out {
		if isFloat[T]() {
			out[i] = T(r.Float64()*8 - 4)
		} else {
			out[i] = T(r.IntN(101) - 50)
		}
		if nonzero && out[i] == 0 {
			out[i] = 1
		}
	}
	return out
}

func roundTrip[T elem](t *testing.T, c *gpu.Client, shape gpu.Shape) {
	r := rand.New(rand.NewPCG(1, uint64(shape.Len())))
	in := data[T](r, shape.Len(), false)
	a := must(gpu.Upload(bg, c, gpu.NewHost(shape, in)))
	if a.DType() != gpu.DTypeOf[T]() || !a.Shape().Equal(shape) {
		t.Fatalf("uploaded %v, want %v%v", a, gpu.DTypeOf[T](), shape)
	}
	out := must(gpu.Download[T](bg, a))
	if !out.Shape.Equal(shape) || !slices.Equal(out.Data, in) {
		t.Fatalf("%v%v: the data came back different", gpu.DTypeOf[T](), shape)
	}
	check(a.Free(bg))
}

func testTransfer(t *testing.T, nb NewBackend) {
	// A small chunk makes every transfer of more than 4 KiB go in pieces,
	// several in flight.
	e := Start(t, nb(t), gpu.Config{Chunk: 4096})
	c := e.Dial(t)
	for _, shape := range []gpu.Shape{{1}, {7}, {5, 5}, {3, 4, 5}, {1000}, {513, 17}, {2, 3, 4, 5, 6}} {
		roundTrip[float32](t, c, shape)
		roundTrip[float64](t, c, shape)
		roundTrip[int32](t, c, shape)
		roundTrip[int64](t, c, shape)
	}
	// A wrong element type on download is refused, not reinterpreted.
	a := must(gpu.Upload(bg, c, gpu.NewVector([]float32{1, 2})))
	_, err := gpu.Download[float64](bg, a)
	wantErr(t, "download as float64", err, gpu.ErrDType, "float32")
	if in := e.Service.Info(); in.Arrays != 1 || in.Used != 8 {
		t.Fatalf("in use: %+v", in)
	}
	c.Close()
	e.WaitEmpty(t)
}

func gemmCase[T float32 | float64](t *testing.T, c *gpu.Client, m, n, k int, transA, transB bool, alpha, beta float64) {
	r := rand.New(rand.NewPCG(uint64(m*n), uint64(k)))
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	ad, bd, cd := data[T](r, ar*ac, false), data[T](r, br*bc, false), data[T](r, m*n, false)
	a := must(gpu.Upload(bg, c, gpu.NewMatrix(ar, ac, ad)))
	b := must(gpu.Upload(bg, c, gpu.NewMatrix(br, bc, bd)))
	cc := must(gpu.Upload(bg, c, gpu.NewMatrix(m, n, cd)))
	check(c.Gemm(bg, alpha, a, transA, b, transB, beta, cc))
	got := must(gpu.Download[T](bg, cc))
	want := refGemm(alpha, f64(ad), ar, ac, transA, f64(bd), br, bc, transB, beta, f64(cd))
	tol := 1e-4 * float64(k)
	if gpu.DTypeOf[T]() == gpu.Float64 {
		tol = 1e-12 * float64(k)
	}
	for i := range want {
		if d := math.Abs(float64(got.Data[i]) - want[i]); d > tol*(1+math.Abs(want[i])) {
			t.Fatalf("gemm %d×%d×%d transA=%v transB=%v: element %d is %v, want %v", m, n, k, transA, transB, i, got.Data[i], want[i])
		}
	}
	if !transA && !transB {
		p := must(c.MatMul(bg, a, b))
		got := must(gpu.Download[T](bg, p))
		want := refGemm(1, f64(ad), ar, ac, false, f64(bd), br, bc, false, 0, make([]float64, m*n))
		for i := range want {
			if d := math.Abs(float64(got.Data[i]) - want[i]); d > tol*(1+math.Abs(want[i])) {
				t.Fatalf("matmul %d×%d×%d: element %d is %v, want %v", m, n, k, i, got.Data[i], want[i])
			}
		}
		check(p.Free(bg))
	}
	for _, x := range []*gpu.Array{a, b, cc} {
		check(x.Free(bg))
	}
}

func f64[T elem](x []T) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func testGemm(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c := e.Dial(t)
	for _, s := range [][3]int{{1, 1, 1}, {5, 5, 5}, {3, 7, 4}, {7, 3, 9}, {64, 33, 17}, {130, 70, 90}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				gemmCase[float32](t, c, s[0], s[1], s[2], ta, tb, 1.5, 0.5)
				gemmCase[float64](t, c, s[0], s[1], s[2], ta, tb, 1, 0)
			}
		}
	}
	// Bad operands.
	a := must(gpu.Upload(bg, c, gpu.NewMatrix(2, 3, make([]float32, 6))))
	b := must(gpu.Upload(bg, c, gpu.NewMatrix(2, 3, make([]float32, 6))))
	_, err := c.MatMul(bg, a, b)
	wantErr(t, "2×3 · 2×3", err, gpu.ErrShape, "inner dimensions")
	i := must(gpu.Upload(bg, c, gpu.NewMatrix(3, 2, make([]int32, 6))))
	_, err = c.MatMul(bg, a, i)
	wantErr(t, "float32 · int32", err, gpu.ErrDType, "int32")
	v := must(gpu.Upload(bg, c, gpu.NewVector(make([]float32, 3))))
	_, err = c.MatMul(bg, a, v)
	wantErr(t, "matrix · vector", err, gpu.ErrShape, "matrices")
	sq := must(gpu.Upload(bg, c, gpu.NewMatrix(3, 3, make([]float32, 9))))
	wantErr(t, "C is A", c.Gemm(bg, 1, sq, false, sq, false, 0, sq), gpu.ErrShape, "must not be")
	wrong := must(gpu.Upload(bg, c, gpu.NewMatrix(3, 2, make([]float32, 6))))
	wantErr(t, "C of the wrong shape", c.Gemm(bg, 1, a, false, sq, false, 0, wrong), gpu.ErrShape, "C has shape")
}

// exprCases are expressions over x and y (arrays) and a, b (scalars).
var exprCases = []struct {
	src       string
	floatOnly bool
}{
	{src: "a*x + b*y"}, {src: "x - y"}, {src: "x * y"}, {src: "x / y"}, {src: "x % y"}, {src: "-x"},
	{src: "abs(x)"}, {src: "min(x, y)"}, {src: "max(x, a)"}, {src: "select(x > y, x, y)"},
	{src: "select(x >= 0, a, y)"}, {src: "x == y"}, {src: "x != y"}, {src: "x < y"}, {src: "x <= a"},
	{src: "(x + 1) * (y - 1)"}, {src: "x"}, {src: "2*3 + x"}, {src: "x*x*x - y"}, {src: "a - x"},
	{src: "b + x*a"}, {src: "select(a > b, x, y)"}, {src: "-(x - y) / 3"},
	{src: "sqrt(abs(x))", floatOnly: true}, {src: "exp(x)", floatOnly: true}, {src: "log(abs(x) + 1)", floatOnly: true},
	{src: "sin(x) + cos(y)", floatOnly: true}, {src: "tan(x / 4)", floatOnly: true}, {src: "floor(x) + ceil(y)", floatOnly: true},
	{src: "pow(abs(x), 1.5)", floatOnly: true}, {src: "x / 0.5 + y", floatOnly: true},
}

func mapCase[T elem](t *testing.T, c *gpu.Client, n int) {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	xd, yd := data[T](r, n, false), data[T](r, n, true)
	x := must(gpu.Upload(bg, c, gpu.NewVector(xd)))
	y := must(gpu.Upload(bg, c, gpu.NewVector(yd)))
	av, bv := 2.0, 5.0
	for _, tc := range exprCases {
		if tc.floatOnly && !isFloat[T]() {
			continue
		}
		ex := must(gpu.ParseExpr(tc.src))
		args := gpu.Args{}
		vars := make([][]T, len(ex.Vars))
		scal := make([]T, len(ex.Vars))
		for i, name := range ex.Vars {
			switch name {
			case "x":
				args[name], vars[i] = x, xd
			case "y":
				args[name], vars[i] = y, yd
			case "a":
				args[name], scal[i] = av, T(av)
			case "b":
				args[name], scal[i] = bv, T(bv)
			}
		}
		out, err := c.Map(bg, tc.src, args)
		if err != nil {
			t.Fatalf("%s over %d %v: %v", tc.src, n, gpu.DTypeOf[T](), err)
		}
		got := must(gpu.Download[T](bg, out))
		check(out.Free(bg))
		var dz bool
		for i := range n {
			want := refEval(ex.Root, vars, scal, i, &dz)
			if !near(got.Data[i], want) {
				t.Fatalf("%s (%v, %d elements): element %d is %v, want %v (x=%v y=%v)",
					tc.src, gpu.DTypeOf[T](), n, i, got.Data[i], want, xd[i], yd[i])
			}
		}
	}
}

func near[T elem](got, want T) bool {
	if !isFloat[T]() {
		return got == want
	}
	g, w := float64(got), float64(want)
	if math.IsNaN(w) || math.IsInf(w, 0) {
		return math.IsNaN(g) == math.IsNaN(w) && (math.IsNaN(w) || g == w)
	}
	tol := 1e-12
	var z T
	if sizeof(z) == 4 {
		tol = 2e-6
	}
	return math.Abs(g-w) <= tol*(1+math.Abs(w))
}

func sizeof[T elem](T) int {
	switch any(*new(T)).(type) {
	case float32, int32:
		return 4
	}
	return 8
}

func testMap(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c := e.Dial(t)
	// 1 and 7 elements; past one chunk; past one goroutine's share.
	for _, n := range []int{1, 7, 2051, 300_001} {
		mapCase[float32](t, c, n)
		mapCase[float64](t, c, n)
		mapCase[int32](t, c, n)
		mapCase[int64](t, c, n)
	}
	// Integer semantics: truncation, wrapping in the array's type.
	x := must(gpu.Upload(bg, c, gpu.NewVector([]int32{7, -7, math.MaxInt32})))
	out := must(c.Map(bg, "x / 2 + x % 2 * 0 + select(x == 2147483647, x + 1 - x, 0)", gpu.Args{"x": x}))
	got := must(gpu.Download[int32](bg, out))
	if want := []int32{3, -3, math.MaxInt32/2 + 1}; !slices.Equal(got.Data, want) {
		t.Fatalf("int32 semantics: %v, want %v", got.Data, want)
	}
	// Scalars of every Go number type broadcast.
	f := must(gpu.Upload(bg, c, gpu.NewVector([]float64{1, 2})))
	out = must(c.Map(bg, "a*x + b + k + m", gpu.Args{"a": float32(2), "x": f, "b": 1, "k": int64(3), "m": uint8(1)}))
	if got := must(gpu.Download[float64](bg, out)); !slices.Equal(got.Data, []float64{7, 9}) {
		t.Fatalf("scalar types: %v", got.Data)
	}
}

func testMapInto(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c := e.Dial(t)
	for _, n := range []int{5, 300_001} {
		xd := make([]float64, n)
		yd := make([]float64, n)
		for i := range xd {
			xd[i], yd[i] = float64(i%97), float64(i%13)+1
		}
		x := must(gpu.Upload(bg, c, gpu.NewVector(xd)))
		y := must(gpu.Upload(bg, c, gpu.NewVector(yd)))
		// The destination is an operand read after the first term.
		check(c.MapInto(bg, x, "x*y + x", gpu.Args{"x": x, "y": y}))
		got := must(gpu.Download[float64](bg, x))
		for i := range xd {
			if want := xd[i]*yd[i] + xd[i]; got.Data[i] != want {
				t.Fatalf("in place, %d elements: element %d is %v, want %v", n, i, got.Data[i], want)
			}
		}
		dst := must(c.Zeros(bg, gpu.Float64, n))
		check(c.MapInto(bg, dst, "y", gpu.Args{"y": y}))
		if got := must(gpu.Download[float64](bg, dst)); !slices.Equal(got.Data, yd) {
			t.Fatal("a bare operand was not copied")
		}
	}
	x := must(gpu.Upload(bg, c, gpu.NewVector([]float64{1, 2})))
	d := must(c.Zeros(bg, gpu.Float64, 3))
	wantErr(t, "into the wrong shape", c.MapInto(bg, d, "x", gpu.Args{"x": x}), gpu.ErrShape, "destination")
}

func reduceCase[T elem](t *testing.T, c *gpu.Client, n int) {
	r := rand.New(rand.NewPCG(uint64(n), 11))
	xd, yd := data[T](r, n, false), data[T](r, n, false)
	x := must(gpu.Upload(bg, c, gpu.NewVector(xd)))
	y := must(gpu.Upload(bg, c, gpu.NewVector(yd)))
	args := gpu.Args{"x": x, "y": y}
	var fs, fp float64 = 0, 1
	var is, ip int64 = 0, 1
	mn, mx := xd[0]*yd[0], xd[0]*yd[0]
	for i := range n {
		v := xd[i] * yd[i]
		fs += float64(v)
		fp *= float64(v)
		is += int64(v)
		ip *= int64(v)
		mn, mx = min(mn, v), max(mx, v)
	}
	check := func(op string, got gpu.Scalar, wantF float64, wantI int64, wantT gpu.DType) {
		t.Helper()
		if got.DType != wantT {
			t.Fatalf("%s of %d %v: type %v, want %v", op, n, gpu.DTypeOf[T](), got.DType, wantT)
		}
		if wantT.IsFloat() {
			if math.Abs(got.F-wantF) > 1e-9*(1+math.Abs(wantF))*float64(n) && !(math.IsInf(wantF, 0) && got.F == wantF) {
				t.Fatalf("%s of %d %v: %v, want %v", op, n, gpu.DTypeOf[T](), got.F, wantF)
			}
		} else if got.I != wantI {
			t.Fatalf("%s of %d %v: %v, want %v", op, n, gpu.DTypeOf[T](), got.I, wantI)
		}
	}
	flt := isFloat[T]()
	wide := gpu.Int64
	if flt {
		wide = gpu.Float64
	}
	check("sum", must(c.Reduce(bg, "sum", "x*y", args)), fs, is, wide)
	if n < 100 { // a product of many numbers over- or underflows
		check("prod", must(c.Reduce(bg, "prod", "x*y", args)), fp, ip, wide)
	}
	check("min", must(c.Reduce(bg, "min", "x*y", args)), float64(mn), int64(mn), gpu.DTypeOf[T]())
	check("max", must(c.Reduce(bg, "max", "x*y", args)), float64(mx), int64(mx), gpu.DTypeOf[T]())
}

func testReduce(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c := e.Dial(t)
	for _, n := range []int{1, 9, 4099, 300_001} {
		reduceCase[float32](t, c, n)
		reduceCase[float64](t, c, n)
		reduceCase[int32](t, c, n)
		reduceCase[int64](t, c, n)
	}
	// Integer sums are exact past the array type's range.
	big := make([]int32, 100_000)
	for i := range big {
		big[i] = math.MaxInt32
	}
	x := must(gpu.Upload(bg, c, gpu.NewVector(big)))
	s := must(c.Reduce(bg, "sum", "x", gpu.Args{"x": x}))
	if s.Int64() != int64(math.MaxInt32)*100_000 {
		t.Fatalf("int32 sum: %v", s)
	}
	// Floats: 10^7 times 0.1 in float32 is 10^6 within float32's
	// precision: the sum is pairwise, not a running float32 total.
	ones := make([]float32, 10_000_000)
	for i := range ones {
		ones[i] = 0.1
	}
	f := must(gpu.Upload(bg, c, gpu.NewVector(ones)))
	s = must(c.Reduce(bg, "sum", "x", gpu.Args{"x": f}))
	if want := 1e7 * float64(float32(0.1)); math.Abs(s.F-want) > 1e-6*want {
		t.Fatalf("sum of 10^7 float32 0.1: %v, want %v", s.F, want)
	}
	_, err := c.Reduce(bg, "mean", "x", gpu.Args{"x": f})
	wantErr(t, "unknown reduction", err, gpu.ErrExpr, "mean")
}

func testConveniences(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c := e.Dial(t)
	a := must(gpu.Upload(bg, c, gpu.NewVector([]float32{1, 2, 3})))
	b := must(gpu.Upload(bg, c, gpu.NewVector([]float32{10, 20, 30})))
	for _, tc := range []struct {
		name string
		f    func() (*gpu.Array, error)
		want []float32
	}{
		{"Add", func() (*gpu.Array, error) { return c.Add(bg, a, b) }, []float32{11, 22, 33}},
		{"Sub", func() (*gpu.Array, error) { return c.Sub(bg, b, a) }, []float32{9, 18, 27}},
		{"Mul", func() (*gpu.Array, error) { return c.Mul(bg, a, b) }, []float32{10, 40, 90}},
		{"Scale", func() (*gpu.Array, error) { return c.Scale(bg, 2, a) }, []float32{2, 4, 6}},
		{"Arange", func() (*gpu.Array, error) { return c.Arange(bg, gpu.Float32, 0, 2.5, 0.5) }, []float32{0, 0.5, 1, 1.5, 2}},
		{"Zeros", func() (*gpu.Array, error) { return c.Zeros(bg, gpu.Float32, 2) }, []float32{0, 0}},
	} {
		got := must(gpu.Download[float32](bg, must(tc.f())))
		if !slices.Equal(got.Data, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, got.Data, tc.want)
		}
	}
	// Zeros are zeros even where a freed array's memory is reused.
	junk := must(c.Random(bg, gpu.Float64, 9, 1<<18)) // 2 MiB
	check(junk.Free(bg))
	z := must(c.Zeros(bg, gpu.Float64, 1<<18))
	if m := must(c.Reduce(bg, "max", "abs(z)", gpu.Args{"z": z})); m.F != 0 {
		t.Fatalf("Zeros after a free: max |z| = %v", m)
	}
	ia := must(c.Arange(bg, gpu.Int64, 10, 0, -3))
	if got := must(gpu.Download[int64](bg, ia)); !slices.Equal(got.Data, []int64{10, 7, 4, 1}) {
		t.Fatalf("int arange down: %v", got.Data)
	}
	check(c.Fill(bg, ia, 42))
	if got := must(gpu.Download[int64](bg, ia)); !slices.Equal(got.Data, []int64{42, 42, 42, 42}) {
		t.Fatalf("fill: %v", got.Data)
	}
	wantErr(t, "fill an int with 0.5", c.Fill(bg, ia, 0.5), gopyro.ErrArgument, "not an integer")
	_, err := c.Arange(bg, gpu.Float32, 0, 1, 0)
	wantErr(t, "arange step 0", err, gopyro.ErrArgument, "step")
	_, err = c.Arange(bg, gpu.Float32, 1, 0, 1)
	wantErr(t, "empty arange", err, gpu.ErrShape, "empty")
	for _, dt := range []gpu.DType{gpu.Float32, gpu.Float64, gpu.Int32, gpu.Int64} {
		r1 := must(c.Random(bg, dt, 42, 1000))
		r2 := must(c.Random(bg, dt, 42, 1000))
		r3 := must(c.Random(bg, dt, 43, 1000))
		lo := must(c.Reduce(bg, "min", "x", gpu.Args{"x": r1}))
		hi := must(c.Reduce(bg, "max", "x", gpu.Args{"x": r1}))
		limit := 1.0
		if !dt.IsFloat() {
			limit = 1 << 31
		}
		if lo.Float64() < 0 || hi.Float64() >= limit || hi.Float64() == lo.Float64() {
			t.Fatalf("random %v: min %v, max %v", dt, lo, hi)
		}
		same := must(c.Reduce(bg, "max", "abs(x - y)", gpu.Args{"x": r1, "y": r2}))
		diff := must(c.Reduce(bg, "max", "abs(x - y)", gpu.Args{"x": r1, "y": r3}))
		if same.Float64() != 0 || diff.Float64() == 0 {
			t.Fatalf("random %v: the same seed differs by %v, another by %v", dt, same, diff)
		}
	}
}

func testCookbook(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c := e.Dial(t)
	// The ReductionKernel recipe: the dot product of arange(400) with itself.
	x := must(c.Arange(bg, gpu.Float32, 0, 400, 1))
	s := must(c.Reduce(bg, "sum", "x*y", gpu.Args{"x": x, "y": x}))
	if s.Float64() != 21253400 {
		t.Fatalf("dot(arange(400), arange(400)) = %v, want 21253400", s)
	}
	// The ElementwiseKernel recipe: c = 2*x + 5*y on 50 random numbers.
	xs := must(c.Random(bg, gpu.Float32, 1, 50))
	ys := must(c.Random(bg, gpu.Float32, 2, 50))
	lin := must(c.Map(bg, "a*x + b*y", gpu.Args{"a": 2.0, "x": xs, "b": 5.0, "y": ys}))
	hx := must(gpu.Download[float32](bg, xs))
	hy := must(gpu.Download[float32](bg, ys))
	hl := must(gpu.Download[float32](bg, lin))
	var norm float64
	for i := range hl.Data {
		d := float64(hl.Data[i] - (2*hx.Data[i] + 5*hy.Data[i]))
		norm += d * d
	}
	if math.Sqrt(norm) >= 1e-5 {
		t.Fatalf("linear combination: norm of the difference %v", math.Sqrt(norm))
	}
}

func testBadInput(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c := e.Dial(t)
	x := must(gpu.Upload(bg, c, gpu.NewVector([]float32{1, 2, 3})))
	y := must(gpu.Upload(bg, c, gpu.NewVector([]float32{1, 2})))
	i := must(gpu.Upload(bg, c, gpu.NewVector([]int32{1, 0, 3})))
	i64 := must(gpu.Upload(bg, c, gpu.NewVector([]int64{1, 0, 3})))
	m := must(gpu.Upload(bg, c, gpu.NewMatrix(1, 3, []float32{1, 2, 3})))
	cases := []struct {
		name  string
		expr  string
		args  gpu.Args
		kind  error
		words []string
	}{
		{"does not parse", "x * (y + ", gpu.Args{"x": x}, gpu.ErrExpr, []string{"does not parse", "column 10"}},
		{"unknown name", "x + z", gpu.Args{"x": x}, gpu.ErrExpr, []string{"z", "not among the arguments"}},
		{"unused argument", "x", gpu.Args{"x": x, "w": x}, gpu.ErrExpr, []string{"w", "not used"}},
		{"unknown function", "foo(x)", gpu.Args{"x": x}, gpu.ErrExpr, []string{"unknown function foo", "column 1"}},
		{"wrong arity", "pow(x)", gpu.Args{"x": x}, gpu.ErrExpr, []string{"pow takes 2"}},
		{"indexing", "x[0]", gpu.Args{"x": x}, gpu.ErrExpr, []string{"indexing"}},
		{"bad operator", "x & x", gpu.Args{"x": x}, gpu.ErrExpr, []string{"operator &"}},
		{"mixed types", "x + i", gpu.Args{"x": x, "i": i}, gpu.ErrDType, []string{"int32", "float32"}},
		{"mixed ints", "i + j", gpu.Args{"i": i, "j": i64}, gpu.ErrDType, []string{"int64"}},
		{"mixed shapes", "x + y", gpu.Args{"x": x, "y": y}, gpu.ErrShape, []string{"(2,)", "(3,)"}},
		{"same length, other shape", "x + m", gpu.Args{"x": x, "m": m}, gpu.ErrShape, []string{"(1, 3)"}},
		{"integer division by zero", "10 / i", gpu.Args{"i": i}, gpu.ErrDivideByZero, []string{"division by zero"}},
		{"integer remainder by zero", "i % (i - i)", gpu.Args{"i": i}, gpu.ErrDivideByZero, nil},
		{"float function on ints", "sqrt(i)", gpu.Args{"i": i}, gpu.ErrDType, []string{"sqrt needs a float"}},
		{"fraction in an int expression", "i * 0.5", gpu.Args{"i": i}, gpu.ErrDType, []string{"0.5", "not an integer"}},
		{"fractional scalar for ints", "i * s", gpu.Args{"i": i, "s": 0.5}, gopyro.ErrArgument, []string{"s = 0.5"}},
		{"int32 overflow scalar", "i + s", gpu.Args{"i": i, "s": int64(1) << 40}, gopyro.ErrArgument, []string{"out of range of int32"}},
		{"no array", "2 * s", gpu.Args{"s": 1.0}, gpu.ErrExpr, []string{"no array"}},
		{"empty", " ", gpu.Args{}, gpu.ErrExpr, []string{"empty"}},
		{"not a number", "x * s", gpu.Args{"x": x, "s": "two"}, gopyro.ErrArgument, []string{"s is a string"}},
	}
	for _, tc := range cases {
		_, err := c.Map(bg, tc.expr, tc.args)
		wantErr(t, tc.name, err, tc.kind, tc.words...)
	}
	// Floats divide by zero to infinity, as IEEE says.
	inf := must(c.Map(bg, "x / (x - x)", gpu.Args{"x": x}))
	if got := must(gpu.Download[float32](bg, inf)); !math.IsInf(float64(got.Data[0]), 1) {
		t.Fatalf("1/0 in float32: %v", got.Data[0])
	}
	// A freed array.
	f := must(gpu.Upload(bg, c, gpu.NewVector([]float32{1})))
	check(f.Free(bg))
	_, err := c.Scale(bg, 2, f)
	wantErr(t, "a freed array", err, gpu.ErrFreed, f.URI().Object)
	_, err = gpu.Download[float32](bg, f)
	wantErr(t, "download a freed array", err, gpu.ErrFreed)
	wantErr(t, "free twice", f.Free(bg), gpu.ErrFreed)
	// A reference that is no array of this service.
	foreign := gopyro.URI{Scheme: gopyro.SchemePyro, Object: "gpuarr_nosuch", Host: "127.0.0.1", Port: 1}
	_, err = c.Attach(bg, foreign)
	wantErr(t, "a foreign array", err, gpu.ErrFreed, "gpuarr_nosuch", "not an array of this service")
	// Data that does not match its declared shape, sent as it travels.
	_, err = c.Proxy().Call(bg, "Upload", gpu.Float32, gpu.Shape{2, 2}, make([]byte, 12))
	wantErr(t, "12 bytes for 2×2 float32", err, gpu.ErrShape, "12 bytes", "(2, 2)")
	_, err = c.Proxy().Call(bg, "Upload", gpu.DType(9), gpu.Shape{2}, make([]byte, 8))
	wantErr(t, "unknown dtype", err, gpu.ErrDType)
	_, err = c.Proxy().Call(bg, "Write", x.Ref(), int64(2), make([]byte, 4))
	wantErr(t, "unaligned write", err, gpu.ErrShape, "offset 2")
	_, err = c.Proxy().Call(bg, "Read", x.Ref(), int64(8), 8)
	wantErr(t, "read past the end", err, gpu.ErrShape, "outside")
	_, err = gpu.Upload(bg, c, gpu.NewMatrix(2, 2, []float32{1, 2, 3}))
	wantErr(t, "host shape", err, gpu.ErrShape)
	for _, shape := range []gpu.Shape{{0}, {-1, 2}, {}, {1, 1, 1, 1, 1, 1, 1, 1, 1}} {
		_, err = c.Zeros(bg, gpu.Float32, shape...)
		wantErr(t, fmt.Sprintf("shape %v", shape), err, gopyro.ErrArgument)
	}
	// The service still serves.
	if got := must(gpu.Download[float32](bg, x)); !slices.Equal(got.Data, []float32{1, 2, 3}) {
		t.Fatalf("after the bad input: %v", got.Data)
	}
}

func testLimits(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{MaxMemory: 768<<10 + 64, SessionMemory: 512 << 10, MaxArray: 256 << 10, MaxArrays: 8})
	c := e.Dial(t)
	_, err := c.Zeros(bg, gpu.Float64, 64<<10) // 512 KiB: over the array limit
	wantErr(t, "one array over the limit", err, gpu.ErrOutOfMemory, "size limit")
	a := must(c.Zeros(bg, gpu.Float64, 32<<10)) // 256 KiB
	b := must(c.Zeros(bg, gpu.Float64, 32<<10))
	_, err = c.Zeros(bg, gpu.Float64, 1<<10)
	wantErr(t, "the session's memory", err, gpu.ErrOutOfMemory, "session's memory limit")
	_, err = c.Map(bg, "x + 1", gpu.Args{"x": a})
	wantErr(t, "a result over the session's memory", err, gpu.ErrOutOfMemory)
	c2 := e.Dial(t)
	must(c2.Zeros(bg, gpu.Float64, 32<<10))
	_, err = c2.Zeros(bg, gpu.Float64, 32<<10)
	wantErr(t, "the service's memory", err, gpu.ErrOutOfMemory, "service's memory limit")
	check(b.Free(bg))
	must(c2.Zeros(bg, gpu.Float64, 32<<10)) // freed memory is available again
	c3 := e.Dial(t)
	for range 8 {
		must(c3.Zeros(bg, gpu.Float32, 1))
	}
	_, err = c3.Zeros(bg, gpu.Float32, 1)
	wantErr(t, "too many arrays", err, gpu.ErrOutOfMemory, "maximum of 8 arrays")
	in := must(c.Info(bg))
	if in.Used != 3*(256<<10)+8*4 || in.Arrays != 11 {
		t.Fatalf("in use: %d bytes in %d arrays", in.Used, in.Arrays)
	}
}

func testKernels(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c := e.Dial(t)
	const src = `__global__ void doubleMatrix(float *a) { int idx = threadIdx.x + threadIdx.y*5; a[idx] *= 2; }`
	k := gpu.Kernel{Source: src, Name: "doubleMatrix"}
	a := must(gpu.Upload(bg, c, gpu.NewMatrix(5, 5, make([]float32, 25))))
	for _, tc := range []struct {
		grid, block gpu.Dim3
		words       string
	}{
		{gpu.Dim3{X: -1}, gpu.Dim3{X: 5}, "grid.X is -1"},
		{gpu.Dim3{X: 1, Y: 70000}, gpu.Dim3{X: 5}, "grid.Y is 70000"},
		{gpu.Dim3{X: 1}, gpu.Dim3{X: 2048}, "block.X is 2048"},
		{gpu.Dim3{X: 1}, gpu.Dim3{X: 64, Y: 32}, "2048 threads"},
	} {
		wantErr(t, tc.words, c.Launch(bg, k, tc.grid, tc.block, a), gpu.ErrLaunch, tc.words)
	}
	wantErr(t, "no name", c.Launch(bg, gpu.Kernel{Source: src}, gpu.Dim3{X: 1}, gpu.Dim3{X: 1}, a), gpu.ErrLaunch, "name")
	wantErr(t, "an int scalar", c.Launch(bg, k, gpu.Dim3{X: 1}, gpu.Dim3{X: 1}, a, 3), gopyro.ErrArgument, "int32")
	err := c.Launch(bg, k, gpu.Dim3{X: 1}, gpu.Dim3{X: 5, Y: 5}, a)
	info := must(c.Info(bg))
	if info.Backend == "cpu" {
		wantErr(t, "a kernel on the CPU", err, gpu.ErrUnsupported, "doubleMatrix", "CUDA")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
}

func testCleanup(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	before := len(e.Daemon.Registered())
	for range 3 {
		c, err := gpu.Dial(bg, e.URI)
		if err != nil {
			t.Fatal(err)
		}
		x := must(c.Random(bg, gpu.Float32, 1, 1000))
		must(c.Scale(bg, 2, x))
		must(c.Arange(bg, gpu.Int32, 0, 10, 1))
		if in := e.Service.Info(); in.Arrays < 3 || in.Used == 0 {
			t.Fatalf("while connected: %+v", in)
		}
		c.Close()
		e.WaitEmpty(t)
	}
	if after := len(e.Daemon.Registered()); after != before {
		t.Fatalf("the daemon serves %d objects after the sessions ended, %d before", after, before)
	}
}

func testSharing(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c1, err := gpu.Dial(bg, e.URI)
	if err != nil {
		t.Fatal(err)
	}
	c2 := e.Dial(t)
	a := must(gpu.Upload(bg, c1, gpu.NewVector([]float64{1, 2, 3})))
	// c2 cannot use c1's array by accident, only by attaching its URI.
	b := must(gpu.Upload(bg, c2, gpu.NewVector([]float64{1, 1, 1})))
	_, err = c2.Add(bg, a, b)
	wantErr(t, "another client's array", err, gpu.ErrFreed, "Attach")
	shared := must(c2.Attach(bg, a.URI()))
	sum := must(c2.Add(bg, shared, b))
	c1.Close() // the maker leaves: the array lives on with c2
	testutil.WaitFor(t, 10*time.Second, "c1's session ended", func() bool { return e.Service.Info().Arrays == 3 })
	if got := must(gpu.Download[float64](bg, shared)); !slices.Equal(got.Data, []float64{1, 2, 3}) {
		t.Fatalf("shared after its maker left: %v", got.Data)
	}
	if got := must(gpu.Download[float64](bg, sum)); !slices.Equal(got.Data, []float64{2, 3, 4}) {
		t.Fatalf("sum: %v", got.Data)
	}
	// A generic client reads the array through its own object.
	p, err := proxy.New(shared.URI().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	info := must(proxy.Call[gpu.ArrayInfo](bg, p, "Info"))
	if info.DType != gpu.Float64 || !info.Shape.Equal(gpu.Shape{3}) {
		t.Fatalf("array object info: %+v", info)
	}
	check(shared.Free(bg))
	check(sum.Free(bg))
	check(b.Free(bg))
	e.WaitEmpty(t)
}

func testConcurrent(t *testing.T, nb NewBackend) {
	e := Start(t, nb(t), gpu.Config{})
	c := e.Dial(t)
	x := must(c.Arange(bg, gpu.Float64, 0, 100_000, 1))
	acc := must(c.Zeros(bg, gpu.Float64, 100_000))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for range 10 {
				var err error
				switch g % 4 {
				case 0:
					err = c.MapInto(bg, acc, "acc + x", gpu.Args{"acc": acc, "x": x})
				case 1:
					_, err = c.Reduce(bg, "sum", "x", gpu.Args{"x": x})
				case 2:
					_, err = gpu.Download[float64](bg, acc)
				case 3:
					var y *gpu.Array
					if y, err = c.Scale(bg, 2, x); err == nil {
						err = y.Free(bg)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Two goroutines added x ten times each.
	s := must(c.Reduce(bg, "sum", "acc - 20*x", gpu.Args{"acc": acc, "x": x}))
	if s.F != 0 {
		t.Fatalf("concurrent updates lost: %v", s)
	}
}
