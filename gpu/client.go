package gpu

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"unsafe"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/proxy"
)

// Client is a connection to a GPU compute service: one session, whose
// arrays the service frees when the client closes or goes away. A Client
// is safe for concurrent use.
type Client struct {
	p     *proxy.Proxy
	chunk int // the service's transfer chunk
}

// window is how many transfer chunks a client keeps in flight.
const window = 4

// Dial connects to the service at uri (PYRO:gopyro.gpu@host:port, or
// PYRONAME:gopyro.gpu through the name server) and asks what it runs on.
func Dial(ctx context.Context, uri string, opts ...proxy.Option) (*Client, error) {
	p, err := proxy.New(uri, opts...)
	if err != nil {
		return nil, err
	}
	c := &Client{p: p, chunk: DefaultChunk}
	info, err := c.Info(ctx)
	if err != nil {
		p.Close()
		return nil, err
	}
	if info.Chunk > 0 {
		c.chunk = info.Chunk
	}
	return c, nil
}

// Close ends the session: the service frees the arrays it holds.
func (c *Client) Close() error { return c.p.Close() }

// Proxy is the client's proxy of the service's session object.
func (c *Client) Proxy() *proxy.Proxy { return c.p }

// Info describes the service: backend, devices, limits, memory in use.
func (c *Client) Info(ctx context.Context) (Info, error) {
	return proxy.Call[Info](ctx, c.p, "Info")
}

// Array is a remote, device-resident array. Pass it to the client's
// operations; results stay on the device until downloaded.
type Array struct {
	c    *Client
	info ArrayInfo
}

// DType is the array's element type.
func (a *Array) DType() DType { return a.info.DType }

// Shape is the array's shape (do not modify it).
func (a *Array) Shape() Shape { return a.info.Shape }

// Len is the number of elements.
func (a *Array) Len() int { return a.info.Shape.Len() }

// URI is the array's reference: another client of the same service may
// Attach it.
func (a *Array) URI() gopyro.URI { return a.info.Ref.URI }

// Ref is the array's reference as a daemon.Ref.
func (a *Array) Ref() daemon.Ref { return a.info.Ref }

func (a *Array) String() string {
	return fmt.Sprintf("%s%v %s", a.info.DType, a.info.Shape, a.info.Ref.URI.Object)
}

// Free releases the array (this client's hold on it).
func (a *Array) Free(ctx context.Context) error {
	_, err := a.c.p.Call(ctx, "Free", a.info.Ref)
	return err
}

func (c *Client) array(ctx context.Context, method string, args ...any) (*Array, error) {
	info, err := proxy.Call[ArrayInfo](ctx, c.p, method, args...)
	if err != nil {
		return nil, err
	}
	return &Array{c: c, info: info}, nil
}

func (c *Client) own(a *Array) error {
	if a == nil {
		return &gopyro.Error{Code: gopyro.CodeArgument, Op: "gpu", Message: "nil array"}
	}
	if a.c != c {
		return newErr(ErrFreed, "array %s belongs to another client: Attach its URI first", a.info.Ref.URI.Object)
	}
	return nil
}

// Attach holds an array another client of the same service made and
// shared (its URI): it lives until every holder has freed it or gone.
func (c *Client) Attach(ctx context.Context, uri gopyro.URI) (*Array, error) {
	return c.array(ctx, "Attach", daemon.Ref{URI: uri})
}

// Host is an array in host memory: row-major data and its shape.
type Host[T Number] struct {
	Shape Shape
	Data  []T
}

// NewMatrix makes a rows×cols host matrix of data (row-major).
func NewMatrix[T Number](rows, cols int, data []T) Host[T] {
	return Host[T]{Shape: Shape{rows, cols}, Data: data}
}

// NewVector makes a host vector of data.
func NewVector[T Number](data []T) Host[T] { return Host[T]{Shape: Shape{len(data)}, Data: data} }

// NewHost makes a host array of data with shape.
func NewHost[T Number](shape Shape, data []T) Host[T] { return Host[T]{Shape: shape, Data: data} }

// At returns the element at the given indices (one per dimension).
func (h Host[T]) At(idx ...int) T {
	if len(idx) != len(h.Shape) {
		panic(fmt.Sprintf("gpu: %d indices for shape %v", len(idx), h.Shape))
	}
	off := 0
	for i, x := range idx {
		if x < 0 || x >= h.Shape[i] {
			panic(fmt.Sprintf("gpu: index %d out of range of dimension %d (%d)", x, i, h.Shape[i]))
		}
		off = off*h.Shape[i] + x
	}
	return h.Data[off]
}

var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// asBytes is data's little-endian bytes: its own memory on a
// little-endian machine, a converted copy otherwise.
func asBytes[T Number](data []T) []byte {
	if len(data) == 0 {
		return nil
	}
	size := int(unsafe.Sizeof(data[0]))
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), len(data)*size)
	if littleEndian {
		return b
	}
	c := slices.Clone(b)
	swapBytes(c, size)
	return c
}

func swapBytes(p []byte, size int) {
	for i := 0; i+size <= len(p); i += size {
		for a, z := i, i+size-1; a < z; a, z = a+1, z-1 {
			p[a], p[z] = p[z], p[a]
		}
	}
}

// Upload copies a host array to the service and returns the device array.
// Large arrays travel in chunks, several in flight.
func Upload[T Number](ctx context.Context, c *Client, h Host[T]) (*Array, error) {
	t := DTypeOf[T]()
	if n := h.Shape.Len(); n != len(h.Data) || len(h.Shape) == 0 {
		return nil, newErr(ErrShape, "upload: %d elements do not match shape %v (%d elements)", len(h.Data), h.Shape, n)
	}
	data := asBytes(h.Data)
	if len(data) <= c.chunk {
		return c.array(ctx, "Upload", t, h.Shape, data)
	}
	a, err := c.array(ctx, "CreateForUpload", t, h.Shape)
	if err != nil {
		return nil, err
	}
	err = c.transfer(ctx, len(data), func(ctx context.Context, off, n int) *proxy.Future {
		return c.p.Go(ctx, "Write", a.info.Ref, int64(off), data[off:off+n])
	}, nil)
	if err != nil {
		_ = a.Free(context.WithoutCancel(ctx))
		return nil, err
	}
	return a, nil
}

// transfer moves total bytes in chunks with up to window calls in flight;
// done receives each finished call's results with its offset.
func (c *Client) transfer(ctx context.Context, total int, start func(ctx context.Context, off, n int) *proxy.Future,
	done func(off int, r *proxy.Results) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type pending struct {
		off int
		f   *proxy.Future
	}
	var q []pending
	next := 0
	for next < total || len(q) > 0 {
		for next < total && len(q) < window {
			n := min(c.chunk, total-next)
			q = append(q, pending{next, start(ctx, next, n)})
			next += n
		}
		p := q[0]
		q = q[1:]
		r, err := p.f.Wait(ctx)
		if err == nil && done != nil {
			err = done(p.off, r)
		}
		if err != nil {
			cancel()
			for _, p := range q {
				_, _ = p.f.Wait(context.Background())
			}
			return err
		}
	}
	return nil
}

// Download copies a device array to host memory. T must be the array's
// element type.
func Download[T Number](ctx context.Context, a *Array) (Host[T], error) {
	t := DTypeOf[T]()
	if a == nil {
		return Host[T]{}, &gopyro.Error{Code: gopyro.CodeArgument, Op: "gpu", Message: "nil array"}
	}
	if t != a.info.DType {
		return Host[T]{}, newErr(ErrDType, "download: the array is %s, not %s", a.info.DType, t)
	}
	out := make([]T, a.Len())
	if err := DownloadInto(ctx, a, out); err != nil {
		return Host[T]{}, err
	}
	return Host[T]{Shape: slices.Clone(a.info.Shape), Data: out}, nil
}

// DownloadInto copies a device array into out, which must have exactly
// the array's length (reuse one buffer for many downloads).
func DownloadInto[T Number](ctx context.Context, a *Array, out []T) error {
	t := DTypeOf[T]()
	if a == nil {
		return &gopyro.Error{Code: gopyro.CodeArgument, Op: "gpu", Message: "nil array"}
	}
	if t != a.info.DType {
		return newErr(ErrDType, "download: the array is %s, not %s", a.info.DType, t)
	}
	if len(out) != a.Len() {
		return newErr(ErrShape, "download into %d elements: the array has %d", len(out), a.Len())
	}
	c := a.c
	dst := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(out))), len(out)*t.Size())
	err := c.transfer(ctx, len(dst), func(ctx context.Context, off, n int) *proxy.Future {
		return c.p.Go(ctx, "Read", a.info.Ref, int64(off), n)
	}, func(off int, r *proxy.Results) error {
		// The chunk decodes straight into its place in dst.
		want := min(c.chunk, len(dst)-off)
		b := dst[off : off : off+want]
		if err := r.Decode(&b); err != nil {
			return err
		}
		if len(b) != want {
			return &gopyro.Error{Code: gopyro.CodeProtocol, Op: "gpu",
				Message: fmt.Sprintf("the service sent %d bytes for a read of %d", len(b), want)}
		}
		if &b[0] != &dst[off] {
			copy(dst[off:], b)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !littleEndian {
		swapBytes(dst, t.Size())
	}
	return nil
}

// Zeros makes an array of zeros.
func (c *Client) Zeros(ctx context.Context, t DType, shape ...int) (*Array, error) {
	return c.array(ctx, "Create", t, Shape(shape))
}

// Fill sets every element of a to v.
func (c *Client) Fill(ctx context.Context, a *Array, v float64) error {
	if err := c.own(a); err != nil {
		return err
	}
	_, err := c.p.Call(ctx, "Fill", a.info.Ref, numArg("", v))
	return err
}

// Arange makes the vector start, start+step, ... below stop, of type t.
func (c *Client) Arange(ctx context.Context, t DType, start, stop, step float64) (*Array, error) {
	return c.array(ctx, "Arange", t, numArg("", start), numArg("", stop), numArg("", step))
}

// Random makes an array of uniform random numbers: floats in [0, 1),
// integers in [0, 2^31). The same seed gives the same numbers.
func (c *Client) Random(ctx context.Context, t DType, seed uint64, shape ...int) (*Array, error) {
	return c.array(ctx, "Random", t, Shape(shape), seed)
}

// MatMul returns the matrix product a·b.
func (c *Client) MatMul(ctx context.Context, a, b *Array) (*Array, error) {
	if err := c.own2(a, b); err != nil {
		return nil, err
	}
	return c.array(ctx, "MatMul", a.info.Ref, b.info.Ref)
}

// Gemm computes dst = alpha*op(a)*op(b) + beta*dst in place, where op(x)
// is x or, when its trans flag is set, its transpose.
func (c *Client) Gemm(ctx context.Context, alpha float64, a *Array, transA bool, b *Array, transB bool, beta float64, dst *Array) error {
	if err := c.own2(a, b); err != nil {
		return err
	}
	if err := c.own(dst); err != nil {
		return err
	}
	_, err := c.p.Call(ctx, "Gemm", alpha, a.info.Ref, transA, b.info.Ref, transB, beta, dst.info.Ref)
	return err
}

func (c *Client) own2(a, b *Array) error {
	if err := c.own(a); err != nil {
		return err
	}
	return c.own(b)
}

// Args binds an expression's names to arrays (*Array) and numbers (any
// Go integer or float type).
type Args map[string]any

func numArg(name string, v float64) Arg { return Arg{Name: name, Kind: ArgFloat, F: v} }

// wire turns a into Args as they travel, sorted by name.
func (c *Client) wire(a Args) ([]Arg, error) {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Arg, 0, len(a))
	for _, k := range keys {
		arg, err := c.arg(k, a[k])
		if err != nil {
			return nil, err
		}
		out = append(out, arg)
	}
	return out, nil
}

func (c *Client) arg(name string, v any) (Arg, error) {
	switch x := v.(type) {
	case *Array:
		if err := c.own(x); err != nil {
			return Arg{}, err
		}
		return Arg{Name: name, Kind: ArgArray, Ref: &x.info.Ref}, nil
	case float64:
		return Arg{Name: name, Kind: ArgFloat, F: x, DType: Float64}, nil
	case float32:
		return Arg{Name: name, Kind: ArgFloat, F: float64(x), DType: Float32}, nil
	case int:
		return Arg{Name: name, Kind: ArgInt, I: int64(x)}, nil
	case int32:
		return Arg{Name: name, Kind: ArgInt, I: int64(x), DType: Int32}, nil
	case int64:
		return Arg{Name: name, Kind: ArgInt, I: x, DType: Int64}, nil
	case uint32:
		return Arg{Name: name, Kind: ArgInt, I: int64(x)}, nil
	case uint64:
		if x > math.MaxInt64 {
			return Arg{}, errorf(gopyro.CodeArgument, "%s = %d is out of range", name, x)
		}
		return Arg{Name: name, Kind: ArgInt, I: int64(x)}, nil
	case int8, int16, uint8, uint16, uint:
		return c.arg(name, toInt(x))
	}
	return Arg{}, errorf(gopyro.CodeArgument, "%s is a %T: pass a *gpu.Array or a number", name, v)
}

func toInt(v any) int {
	switch x := v.(type) {
	case int8:
		return int(x)
	case int16:
		return int(x)
	case uint8:
		return int(x)
	case uint16:
		return int(x)
	case uint:
		return int(x)
	}
	return 0
}

// Map evaluates an element-wise expression (Go syntax, see ParseExpr)
// over args into a new array: Map(ctx, "a*x + b*y", Args{"a": 2.0, "x": x, "b": 5.0, "y": y}).
func (c *Client) Map(ctx context.Context, expr string, args Args) (*Array, error) {
	w, err := c.wire(args)
	if err != nil {
		return nil, err
	}
	return c.array(ctx, "Map", expr, w)
}

// MapInto evaluates an element-wise expression into dst, which may be one
// of its operands (PyCUDA's ElementwiseKernel with its output argument).
func (c *Client) MapInto(ctx context.Context, dst *Array, expr string, args Args) error {
	if err := c.own(dst); err != nil {
		return err
	}
	w, err := c.wire(args)
	if err != nil {
		return err
	}
	_, err = c.p.Call(ctx, "MapInto", dst.info.Ref, expr, w)
	return err
}

// Reduce evaluates an element-wise expression and reduces it with op
// (sum, prod, min, max): Reduce(ctx, "sum", "x*y", ...) is a dot product.
// Sums and products of floats come back as Float64, of integers as Int64
// (exact); min and max in the arrays' type.
func (c *Client) Reduce(ctx context.Context, op, expr string, args Args) (Scalar, error) {
	w, err := c.wire(args)
	if err != nil {
		return Scalar{}, err
	}
	return proxy.Call[Scalar](ctx, c.p, "Reduce", op, expr, w)
}

// Add returns a + b; Sub a - b; Mul the element-wise product; Scale s*a.
func (c *Client) Add(ctx context.Context, a, b *Array) (*Array, error) {
	return c.Map(ctx, "a + b", Args{"a": a, "b": b})
}

// Sub returns a - b.
func (c *Client) Sub(ctx context.Context, a, b *Array) (*Array, error) {
	return c.Map(ctx, "a - b", Args{"a": a, "b": b})
}

// Mul returns the element-wise product of a and b.
func (c *Client) Mul(ctx context.Context, a, b *Array) (*Array, error) {
	return c.Map(ctx, "a * b", Args{"a": a, "b": b})
}

// Scale returns s*a.
func (c *Client) Scale(ctx context.Context, s float64, a *Array) (*Array, error) {
	return c.Map(ctx, "s * a", Args{"s": s, "a": a})
}

// Launch runs a custom kernel (CUDA C, or PTX with k.PTX) over grid blocks
// of block threads; a zero dimension counts as 1. args are *Array (a
// device pointer) or scalars of the kernel's exact parameter types
// (float32, float64, int32, int64). The CPU backend answers
// ErrUnsupported.
func (c *Client) Launch(ctx context.Context, k Kernel, grid, block Dim3, args ...any) error {
	w := make([]Arg, len(args))
	for i, v := range args {
		a, err := c.arg(fmt.Sprint(i+1), v)
		if err != nil {
			return err
		}
		if a.Kind != ArgArray && !a.DType.Valid() {
			return errorf(gopyro.CodeArgument, "kernel argument %d is a %T: give scalars as float32, float64, int32 or int64", i+1, v)
		}
		a.Name = ""
		w[i] = a
	}
	_, err := c.p.Call(ctx, "Launch", k, grid.norm(), block.norm(), 0, w)
	return err
}

func (d Dim3) norm() Dim3 {
	if d.X == 0 {
		d.X = 1
	}
	if d.Y == 0 {
		d.Y = 1
	}
	if d.Z == 0 {
		d.Z = 1
	}
	return d
}
