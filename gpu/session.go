package gpu

import (
	"context"
	"slices"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
)

// Arg is an operand as it travels: a named array (Ref) or number.
type Arg struct {
	Name string      `msgpack:"n,omitempty"`
	Kind ArgKind     `msgpack:"k"`
	Ref  *daemon.Ref `msgpack:"r,omitempty"`
	F    float64     `msgpack:"f,omitempty"`
	I    int64       `msgpack:"i,omitempty"`
	// DType is a kernel scalar's exact type.
	DType DType `msgpack:"t,omitempty"`
}

// ArgKind tells what an Arg holds.
type ArgKind uint8

// The kinds of Arg.
const (
	ArgArray ArgKind = iota
	ArgFloat
	ArgInt
)

// Session is one client connection's view of the service: the remote
// object clients call (through [Client]). Its arrays are freed when the
// connection ends.
type Session struct {
	s *Service
	// under s.mu:
	arrays map[*array]struct{}
	used   int64
	closed bool
}

// Close releases every array the session holds; the daemon calls it when
// the connection ends.
func (ss *Session) Close() error {
	ss.s.mu.Lock()
	ss.closed = true
	arrs := make([]*array, 0, len(ss.arrays))
	for a := range ss.arrays {
		arrs = append(arrs, a)
	}
	ss.s.mu.Unlock()
	for _, a := range arrs {
		ss.s.release(ss, a)
	}
	return nil
}

// Info describes the backend, its devices, the limits and the memory in use.
func (ss *Session) Info() Info { return ss.s.Info() }

// Create makes a zeroed array.
func (ss *Session) Create(ctx context.Context, t DType, shape Shape) (ArrayInfo, error) {
	a, err := ss.s.allocate(ctx, ss, t, shape, true)
	if err != nil {
		return ArrayInfo{}, err
	}
	return a.info(), nil
}

// Upload makes an array holding data (little-endian elements of t).
func (ss *Session) Upload(ctx context.Context, t DType, shape Shape, data []byte) (ArrayInfo, error) {
	if !t.Valid() {
		return ArrayInfo{}, newErr(ErrDType, "unknown element type %d", t)
	}
	n, err := shape.check(t.Size(), ss.s.cfg.MaxArray)
	if err != nil {
		return ArrayInfo{}, err
	}
	if want := int64(n) * int64(t.Size()); int64(len(data)) != want {
		return ArrayInfo{}, newErr(ErrShape, "%d bytes of data do not match shape %v of %s (%d bytes)", len(data), shape, t, want)
	}
	a, err := ss.s.alloc(ctx, ss, t, shape)
	if err != nil {
		return ArrayInfo{}, err
	}
	if err := ss.s.b.Write(ctx, a.h, 0, data); err != nil {
		ss.s.release(ss, a)
		return ArrayInfo{}, err
	}
	return a.info(), nil
}

// CreateForUpload makes an array whose every element the caller writes
// next (with Write): its contents are undefined until then.
func (ss *Session) CreateForUpload(ctx context.Context, t DType, shape Shape) (ArrayInfo, error) {
	a, err := ss.s.alloc(ctx, ss, t, shape)
	if err != nil {
		return ArrayInfo{}, err
	}
	return a.info(), nil
}

// Write copies data into the array at byte offset off; offset and length
// are whole elements.
func (ss *Session) Write(ctx context.Context, ref daemon.Ref, off int64, data []byte) error {
	a, err := ss.s.lookup(ref, "write")
	if err != nil {
		return err
	}
	if len(data) > ss.s.cfg.Chunk {
		return errorf(gopyro.CodeArgument, "write of %d bytes: one write moves at most %d", len(data), ss.s.cfg.Chunk)
	}
	es := int64(a.t.Size())
	if off < 0 || off%es != 0 || int64(len(data))%es != 0 || off+int64(len(data)) > a.bytes {
		return newErr(ErrShape, "a write of %d bytes at offset %d does not fit array %s (%d bytes of %s)", len(data), off, a.id, a.bytes, a.t)
	}
	l, err := ss.s.lock("write", nil, []*array{a})
	if err != nil {
		return err
	}
	defer l.unlock()
	return ss.s.b.Write(ctx, a.h, off, data)
}

// Read returns n bytes of the array's data from byte offset off.
func (ss *Session) Read(ctx context.Context, ref daemon.Ref, off int64, n int) ([]byte, error) {
	a, err := ss.s.lookup(ref, "read")
	if err != nil {
		return nil, err
	}
	return ss.s.read(ctx, a, off, n)
}

// Attach makes this session a holder of an array another session made
// (shared by passing its reference): it then lives until every holder
// has freed it or gone.
func (ss *Session) Attach(ref daemon.Ref) (ArrayInfo, error) {
	a, err := ss.s.lookup(ref, "attach")
	if err != nil {
		return ArrayInfo{}, err
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if a.freed || len(a.holders) == 0 {
		return ArrayInfo{}, newErr(ErrFreed, "attach: array %s was freed", a.id)
	}
	if _, ok := a.holders[ss]; !ok {
		if len(ss.arrays) >= ss.s.cfg.MaxArrays {
			return ArrayInfo{}, newErr(ErrOutOfMemory, "this session holds its maximum of %d arrays: free some", ss.s.cfg.MaxArrays)
		}
		a.holders[ss] = struct{}{}
		ss.arrays[a] = struct{}{}
	}
	return a.info(), nil
}

// Free releases this session's hold on an array; the last hold frees it.
func (ss *Session) Free(ref daemon.Ref) error {
	a, err := ss.s.lookup(ref, "free")
	if err != nil {
		return err
	}
	if !ss.s.release(ss, a) {
		return newErr(ErrFreed, "free: this session does not hold array %s (Attach it first)", a.id)
	}
	return nil
}

// Fill sets every element to v.
func (ss *Session) Fill(ctx context.Context, ref daemon.Ref, v Arg) error {
	a, err := ss.s.lookup(ref, "fill")
	if err != nil {
		return err
	}
	sc, err := v.scalar("the fill value", a.t)
	if err != nil {
		return err
	}
	l, err := ss.s.lock("fill", nil, []*array{a})
	if err != nil {
		return err
	}
	defer l.unlock()
	return ss.s.b.Fill(ctx, a.h, a.n, sc)
}

// Arange makes a vector of t: start, start+step, ... below stop.
func (ss *Session) Arange(ctx context.Context, t DType, start, stop, step Arg) (ArrayInfo, error) {
	if !t.Valid() {
		return ArrayInfo{}, newErr(ErrDType, "unknown element type %d", t)
	}
	s0, err := start.scalar("start", t)
	if err != nil {
		return ArrayInfo{}, err
	}
	s1, err := stop.scalar("stop", t)
	if err != nil {
		return ArrayInfo{}, err
	}
	st, err := step.scalar("step", t)
	if err != nil {
		return ArrayInfo{}, err
	}
	var n float64
	if st.Float64() == 0 {
		return ArrayInfo{}, errorf(gopyro.CodeArgument, "arange: step is 0")
	}
	if t.IsFloat() {
		n = (s1.F - s0.F) / st.F
		if n != float64(int64(n)) {
			n = float64(int64(n)) + 1
		}
	} else {
		d := s1.I - s0.I
		n = float64(d / st.I)
		if d%st.I != 0 {
			n++
		}
	}
	if !(n >= 1) {
		return ArrayInfo{}, newErr(ErrShape, "arange(%v, %v, %v) is empty", s0, s1, st)
	}
	if n > float64(ss.s.cfg.MaxArray) {
		return ArrayInfo{}, newErr(ErrOutOfMemory, "arange(%v, %v, %v) has %.0f elements: over the array size limit", s0, s1, st, n)
	}
	a, err := ss.s.alloc(ctx, ss, t, Shape{int(n)})
	if err != nil {
		return ArrayInfo{}, err
	}
	if err := ss.s.b.Arange(ctx, a.h, a.n, s0, st); err != nil {
		ss.s.release(ss, a)
		return ArrayInfo{}, err
	}
	return a.info(), nil
}

// Random makes an array of uniform random numbers (floats in [0, 1),
// integers in [0, 2^31)); the same seed gives the same numbers.
func (ss *Session) Random(ctx context.Context, t DType, shape Shape, seed uint64) (ArrayInfo, error) {
	a, err := ss.s.alloc(ctx, ss, t, shape)
	if err != nil {
		return ArrayInfo{}, err
	}
	if err := ss.s.b.Random(ctx, a.h, a.n, seed); err != nil {
		ss.s.release(ss, a)
		return ArrayInfo{}, err
	}
	return a.info(), nil
}

// scalar converts a number argument to type t.
func (v Arg) scalar(name string, t DType) (Scalar, error) {
	switch v.Kind {
	case ArgFloat:
		return convertScalar(name, v.F, 0, false, t)
	case ArgInt:
		return convertScalar(name, 0, v.I, true, t)
	}
	return Scalar{}, errorf(gopyro.CodeArgument, "%s must be a number, not an array", name)
}

// gemmShapes checks GEMM's operands and returns M, N, K.
func gemmShapes(a, b, c *array, transA, transB bool) (m, n, k int, err error) {
	for _, x := range []*array{a, b} {
		if len(x.shape) != 2 {
			return 0, 0, 0, newErr(ErrShape, "GEMM multiplies matrices: array %s has shape %v", x.id, x.shape)
		}
	}
	if !a.t.IsFloat() || a.t != b.t {
		return 0, 0, 0, newErr(ErrDType, "GEMM needs two float32 or two float64 matrices, not %s and %s", a.t, b.t)
	}
	m, k = a.shape[0], a.shape[1]
	if transA {
		m, k = k, m
	}
	k2, n := b.shape[0], b.shape[1]
	if transB {
		k2, n = n, k2
	}
	if k != k2 {
		return 0, 0, 0, newErr(ErrShape, "GEMM: op(A) is %d×%d and op(B) is %d×%d: the inner dimensions differ", m, k, k2, n)
	}
	if c != nil {
		if c.t != a.t {
			return 0, 0, 0, newErr(ErrDType, "GEMM: C is %s and A, B are %s", c.t, a.t)
		}
		if !c.shape.Equal(Shape{m, n}) {
			return 0, 0, 0, newErr(ErrShape, "GEMM: C has shape %v, and op(A)·op(B) is %d×%d", c.shape, m, n)
		}
		if c == a || c == b {
			return 0, 0, 0, newErr(ErrShape, "GEMM: C must not be A or B")
		}
	}
	return m, n, k, nil
}

// MatMul returns the matrix product a·b in a new array.
func (ss *Session) MatMul(ctx context.Context, aref, bref daemon.Ref) (ArrayInfo, error) {
	a, err := ss.s.lookup(aref, "matmul A")
	if err != nil {
		return ArrayInfo{}, err
	}
	b, err := ss.s.lookup(bref, "matmul B")
	if err != nil {
		return ArrayInfo{}, err
	}
	m, n, k, err := gemmShapes(a, b, nil, false, false)
	if err != nil {
		return ArrayInfo{}, err
	}
	c, err := ss.s.alloc(ctx, ss, a.t, Shape{m, n})
	if err != nil {
		return ArrayInfo{}, err
	}
	l, err := ss.s.lock("matmul", []*array{a, b}, []*array{c})
	if err != nil {
		ss.s.release(ss, c)
		return ArrayInfo{}, err
	}
	err = ss.s.b.Gemm(ctx, GemmOp{DType: a.t, M: m, N: n, K: k, Alpha: 1, A: a.h, B: b.h, C: c.h})
	l.unlock()
	if err != nil {
		ss.s.release(ss, c)
		return ArrayInfo{}, err
	}
	return c.info(), nil
}

// Gemm computes c = alpha*op(a)*op(b) + beta*c in place.
func (ss *Session) Gemm(ctx context.Context, alpha float64, aref daemon.Ref, transA bool, bref daemon.Ref, transB bool,
	beta float64, cref daemon.Ref) error {
	a, err := ss.s.lookup(aref, "gemm A")
	if err != nil {
		return err
	}
	b, err := ss.s.lookup(bref, "gemm B")
	if err != nil {
		return err
	}
	c, err := ss.s.lookup(cref, "gemm C")
	if err != nil {
		return err
	}
	m, n, k, err := gemmShapes(a, b, c, transA, transB)
	if err != nil {
		return err
	}
	l, err := ss.s.lock("gemm", []*array{a, b}, []*array{c})
	if err != nil {
		return err
	}
	defer l.unlock()
	return ss.s.b.Gemm(ctx, GemmOp{DType: a.t, TransA: transA, TransB: transB, M: m, N: n, K: k,
		Alpha: alpha, Beta: beta, A: a.h, B: b.h, C: c.h})
}

// bound is an expression with its operands checked.
type bound struct {
	e     *Expr
	t     DType
	shape Shape
	n     int
	ops   []Operand
	arrs  []*array
}

// bind checks an expression against its arguments: every name bound
// once and used, arrays of one type and shape, scalars that fit the type.
func (ss *Session) bind(what, src string, args []Arg) (*bound, error) {
	e, err := ss.s.parse(src)
	if err != nil {
		return nil, err
	}
	if len(args) > MaxExprNodes {
		return nil, newErr(ErrExpr, "%s: %d arguments", what, len(args))
	}
	for i, a := range args {
		if slices.IndexFunc(args[:i], func(b Arg) bool { return b.Name == a.Name }) >= 0 {
			return nil, newErr(ErrExpr, "%s: argument %s is given twice", what, a.Name)
		}
		if !slices.Contains(e.Vars, a.Name) {
			return nil, newErr(ErrExpr, "%s: argument %s is not used in %q", what, a.Name, src)
		}
	}
	b := &bound{e: e, ops: make([]Operand, len(e.Vars))}
	var first *array
	byVar := make([]*Arg, len(e.Vars))
	for i, name := range e.Vars {
		j := slices.IndexFunc(args, func(a Arg) bool { return a.Name == name })
		if j < 0 {
			return nil, newErr(ErrExpr, "%s: %q uses %s, which is not among the arguments (%s)", what, src, name, names(args))
		}
		byVar[i] = &args[j]
		if args[j].Kind != ArgArray {
			continue
		}
		if args[j].Ref == nil {
			return nil, newErr(ErrFreed, "%s: argument %s: no array given", what, name)
		}
		a, err := ss.s.lookup(*args[j].Ref, what+" argument "+name)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first, b.t, b.shape, b.n = a, a.t, a.shape, a.n
		} else if a.t != b.t {
			return nil, newErr(ErrDType, "%s: %s is %s, and the other arrays are %s: the arrays of an expression have one type",
				what, name, a.t, b.t)
		} else if !a.shape.Equal(b.shape) {
			return nil, newErr(ErrShape, "%s: %s has shape %v, and the other arrays %v", what, name, a.shape, b.shape)
		}
		b.ops[i] = Operand{IsArray: true, Array: a.h}
		b.arrs = append(b.arrs, a)
	}
	if first == nil {
		return nil, newErr(ErrExpr, "%s: %q has no array among its arguments, so no shape", what, src)
	}
	for i, name := range e.Vars {
		if byVar[i].Kind == ArgArray {
			continue
		}
		sc, err := byVar[i].scalar(name, b.t)
		if err != nil {
			return nil, err
		}
		b.ops[i] = Operand{Scalar: sc}
	}
	if err := e.CheckFor(b.t); err != nil {
		return nil, err
	}
	return b, nil
}

// Map evaluates an element-wise expression into a new array.
func (ss *Session) Map(ctx context.Context, expr string, args []Arg) (ArrayInfo, error) {
	b, err := ss.bind("map", expr, args)
	if err != nil {
		return ArrayInfo{}, err
	}
	dst, err := ss.s.alloc(ctx, ss, b.t, b.shape)
	if err != nil {
		return ArrayInfo{}, err
	}
	if err := ss.runMap(ctx, b, dst); err != nil {
		ss.s.release(ss, dst)
		return ArrayInfo{}, err
	}
	return dst.info(), nil
}

// MapInto evaluates an element-wise expression into dst, which may be one
// of its operands. After an error dst's contents are unspecified.
func (ss *Session) MapInto(ctx context.Context, dref daemon.Ref, expr string, args []Arg) error {
	dst, err := ss.s.lookup(dref, "map into")
	if err != nil {
		return err
	}
	b, err := ss.bind("map", expr, args)
	if err != nil {
		return err
	}
	if dst.t != b.t || !dst.shape.Equal(b.shape) {
		return newErr(ErrShape, "map into: the destination is %s %v and the expression gives %s %v", dst.t, dst.shape, b.t, b.shape)
	}
	return ss.runMap(ctx, b, dst)
}

func (ss *Session) runMap(ctx context.Context, b *bound, dst *array) error {
	l, err := ss.s.lock("map", b.arrs, []*array{dst})
	if err != nil {
		return err
	}
	defer l.unlock()
	return ss.s.b.Map(ctx, MapOp{Expr: b.e, DType: b.t, N: b.n, Dst: dst.h, Args: b.ops})
}

// Reduce evaluates an element-wise expression and reduces it with op:
// sum, prod, min or max.
func (ss *Session) Reduce(ctx context.Context, op, expr string, args []Arg) (Scalar, error) {
	switch op {
	case ReduceSum, ReduceProd, ReduceMin, ReduceMax:
	default:
		return Scalar{}, newErr(ErrExpr, "unknown reduction %q (want sum, prod, min or max)", op)
	}
	b, err := ss.bind("reduce", expr, args)
	if err != nil {
		return Scalar{}, err
	}
	l, err := ss.s.lock("reduce", b.arrs, nil)
	if err != nil {
		return Scalar{}, err
	}
	defer l.unlock()
	return ss.s.b.Reduce(ctx, ReduceOp{Op: op, Expr: b.e, DType: b.t, N: b.n, Args: b.ops})
}

// Kernel launch limits (CUDA's).
const (
	maxBlockThreads = 1024
	maxGridX        = 1<<31 - 1
	maxGridYZ       = 65535
)

// Launch runs a custom kernel over grid blocks of block threads.
func (ss *Session) Launch(ctx context.Context, k Kernel, grid, block Dim3, shared int, args []Arg) error {
	if k.Name == "" || k.Source == "" {
		return newErr(ErrLaunch, "a kernel needs its source and the name of its entry function")
	}
	if len(k.Source) > 1<<20 {
		return newErr(ErrLaunch, "kernel source of %d bytes: the limit is 1 MiB", len(k.Source))
	}
	if err := checkLaunch(grid, block, shared); err != nil {
		return err
	}
	kargs := make([]KernelArg, len(args))
	var arrs []*array
	for i, a := range args {
		switch a.Kind {
		case ArgArray:
			if a.Ref == nil {
				return newErr(ErrLaunch, "kernel argument %d: no array given", i+1)
			}
			x, err := ss.s.lookup(*a.Ref, "launch")
			if err != nil {
				return err
			}
			arrs = append(arrs, x)
			kargs[i] = KernelArg{IsArray: true, Array: x.h}
		default:
			t := a.DType
			if !t.Valid() {
				t = map[ArgKind]DType{ArgFloat: Float64, ArgInt: Int64}[a.Kind]
			}
			sc, err := a.scalar("kernel argument", t)
			if err != nil {
				return err
			}
			kargs[i] = KernelArg{Scalar: sc}
		}
	}
	l, err := ss.s.lock("launch", nil, arrs)
	if err != nil {
		return err
	}
	defer l.unlock()
	return ss.s.b.Launch(ctx, LaunchOp{Kernel: k, Grid: grid, Block: block, SharedMem: shared, Args: kargs})
}

func checkLaunch(grid, block Dim3, shared int) error {
	for _, d := range []struct {
		name   string
		v, max int
	}{{"grid.X", grid.X, maxGridX}, {"grid.Y", grid.Y, maxGridYZ}, {"grid.Z", grid.Z, maxGridYZ},
		{"block.X", block.X, 1024}, {"block.Y", block.Y, 1024}, {"block.Z", block.Z, 64}} {
		if d.v < 1 || d.v > d.max {
			return newErr(ErrLaunch, "%s is %d: it must be 1 to %d", d.name, d.v, d.max)
		}
	}
	if t := block.X * block.Y * block.Z; t > maxBlockThreads {
		return newErr(ErrLaunch, "a block of %d×%d×%d = %d threads: the limit is %d", block.X, block.Y, block.Z, t, maxBlockThreads)
	}
	if shared < 0 || shared > 48<<10 {
		return newErr(ErrLaunch, "%d bytes of shared memory: it must be 0 to 48 KiB", shared)
	}
	return nil
}
