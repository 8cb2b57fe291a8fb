package cpu

import (
	"context"
	"math"
	"sync"

	"github.com/gopyro/gopyro/gpu"
)

type num interface {
	float32 | float64 | int32 | int64
}

// chunk is the number of elements a compiled expression handles at a time:
// its scratch buffers stay in the first-level cache.
const chunk = 2048

// minPerWorker is the fewest elements worth a goroutine of their own.
const minPerWorker = 64 << 10

// frame is one goroutine's state while it runs a program.
type frame[T num] struct {
	vars    [][]T // array operands, by variable
	scal    []T   // scalar operands, by variable
	bufs    [][]T // scratch chunks, by node
	divZero bool
}

// knode is a compiled expression node: a scalar (sv) when no array is
// below it, else run, which computes the elements [off, off+len(out)) and
// returns them: in out, or a view of an operand.
type knode[T num] struct {
	scalar bool
	sv     func(fr *frame[T]) T
	run    func(fr *frame[T], off int, out []T) []T
	// A node that is a scalar times an array variable (x, 2*x, -a*x)
	// also says so: lin, the variable lv and the factor ls. Sums and
	// differences of such nodes run as one fused loop.
	lin bool
	lv  int
	ls  func(fr *frame[T]) T
}

func one[T num](*frame[T]) T { return 1 }

// program is an expression compiled for one type and one choice of which
// variables are arrays.
type program[T num] struct {
	root  knode[T]
	nbufs int
}

type progKey struct {
	src   string
	t     gpu.DType
	isArr string // "a" or "s" per variable
}

func isFloat[T num]() bool {
	var x T = 1
	x /= 2
	return x != 0
}

type compiler[T num] struct {
	isArr []bool
	nbufs int
}

func (c *compiler[T]) newBuf() int { c.nbufs++; return c.nbufs - 1 }

func compile[T num](e *gpu.Expr, isArr []bool) *program[T] {
	c := &compiler[T]{isArr: isArr}
	root := c.node(e.Root)
	return &program[T]{root: root, nbufs: c.nbufs}
}

func (c *compiler[T]) node(n *gpu.Node) knode[T] {
	switch n.Op {
	case gpu.OpConst:
		v := T(n.Value)
		if !isFloat[T]() {
			v = T(int64(n.Value))
		}
		return knode[T]{scalar: true, sv: func(*frame[T]) T { return v }}
	case gpu.OpVar:
		i := n.Var
		if !c.isArr[i] {
			return knode[T]{scalar: true, sv: func(fr *frame[T]) T { return fr.scal[i] }}
		}
		return knode[T]{run: func(fr *frame[T], off int, out []T) []T { return fr.vars[i][off : off+len(out)] },
			lin: true, lv: i, ls: one[T]}
	case gpu.OpSelect:
		return c.sel(n)
	}
	if len(n.Args) == 1 {
		return c.unary(n.Op, c.node(n.Args[0]))
	}
	return c.binary(n.Op, c.node(n.Args[0]), c.node(n.Args[1]))
}

func (c *compiler[T]) unary(op gpu.Op, a knode[T]) knode[T] {
	f := unaryFunc[T](op)
	if a.scalar {
		return knode[T]{scalar: true, sv: func(fr *frame[T]) T { return f(a.sv(fr)) }}
	}
	if op == gpu.OpNeg {
		k := knode[T]{run: func(fr *frame[T], off int, out []T) []T {
			x := a.run(fr, off, out)
			for i := range out {
				out[i] = -x[i]
			}
			return out
		}}
		if a.lin {
			k.lin, k.lv, k.ls = true, a.lv, func(fr *frame[T]) T { return -a.ls(fr) }
		}
		return k
	}
	return knode[T]{run: func(fr *frame[T], off int, out []T) []T {
		x := a.run(fr, off, out)
		for i := range out {
			out[i] = f(x[i])
		}
		return out
	}}
}

func unaryFunc[T num](op gpu.Op) func(T) T {
	fl := func(g func(float64) float64) func(T) T { return func(x T) T { return T(g(float64(x))) } }
	switch op {
	case gpu.OpNeg:
		return func(x T) T { return -x }
	case gpu.OpAbs:
		return func(x T) T {
			if x < 0 || (x == 0 && isFloat[T]()) { // -0 becomes 0
				return -x
			}
			return x
		}
	case gpu.OpSqrt:
		return fl(math.Sqrt)
	case gpu.OpExp:
		return fl(math.Exp)
	case gpu.OpLog:
		return fl(math.Log)
	case gpu.OpSin:
		return fl(math.Sin)
	case gpu.OpCos:
		return fl(math.Cos)
	case gpu.OpTan:
		return fl(math.Tan)
	case gpu.OpFloor:
		return fl(math.Floor)
	case gpu.OpCeil:
		return fl(math.Ceil)
	}
	panic("cpu: not a unary op")
}

// binFunc returns op as a function; div reports a division by zero
// through fr.
func binFunc[T num](op gpu.Op) func(fr *frame[T], a, b T) T {
	b2f := func(ok bool) T {
		if ok {
			return 1
		}
		return 0
	}
	flt := isFloat[T]()
	switch op {
	case gpu.OpAdd:
		return func(_ *frame[T], a, b T) T { return a + b }
	case gpu.OpSub:
		return func(_ *frame[T], a, b T) T { return a - b }
	case gpu.OpMul:
		return func(_ *frame[T], a, b T) T { return a * b }
	case gpu.OpDiv:
		if flt {
			return func(_ *frame[T], a, b T) T { return a / b }
		}
		return func(fr *frame[T], a, b T) T {
			if b == 0 {
				fr.divZero = true
				return 0
			}
			return a / b
		}
	case gpu.OpRem:
		if flt {
			return func(_ *frame[T], a, b T) T { return T(math.Mod(float64(a), float64(b))) }
		}
		return func(fr *frame[T], a, b T) T {
			if b == 0 {
				fr.divZero = true
				return 0
			}
			return irem(a, b)
		}
	case gpu.OpPow:
		return func(_ *frame[T], a, b T) T { return T(math.Pow(float64(a), float64(b))) }
	case gpu.OpMin:
		return func(_ *frame[T], a, b T) T { return min(a, b) }
	case gpu.OpMax:
		return func(_ *frame[T], a, b T) T { return max(a, b) }
	case gpu.OpEq:
		return func(_ *frame[T], a, b T) T { return b2f(a == b) }
	case gpu.OpNe:
		return func(_ *frame[T], a, b T) T { return b2f(a != b) }
	case gpu.OpLt:
		return func(_ *frame[T], a, b T) T { return b2f(a < b) }
	case gpu.OpLe:
		return func(_ *frame[T], a, b T) T { return b2f(a <= b) }
	case gpu.OpGt:
		return func(_ *frame[T], a, b T) T { return b2f(a > b) }
	case gpu.OpGe:
		return func(_ *frame[T], a, b T) T { return b2f(a >= b) }
	}
	panic("cpu: not a binary op")
}

// irem is the integer remainder (T is an integer type here).
func irem[T num](a, b T) T {
	switch any(a).(type) {
	case int32:
		return T(int32(a) % int32(b))
	case int64:
		return T(int64(a) % int64(b))
	}
	return 0
}

func (c *compiler[T]) binary(op gpu.Op, a, b knode[T]) knode[T] {
	k := c.binary1(op, a, b)
	switch {
	case op == gpu.OpMul && a.scalar && b.lin:
		k.lin, k.lv, k.ls = true, b.lv, func(fr *frame[T]) T { return a.sv(fr) * b.ls(fr) }
	case op == gpu.OpMul && b.scalar && a.lin:
		k.lin, k.lv, k.ls = true, a.lv, func(fr *frame[T]) T { return a.ls(fr) * b.sv(fr) }
	case (op == gpu.OpAdd || op == gpu.OpSub) && !a.scalar && !b.scalar && (a.lin || b.lin):
		k.run = fused(op == gpu.OpSub, a, b)
	}
	return k
}

// fused computes sa*x ± sb*y, sa*x ± b, or a ± sb*y in one loop, reading
// the scaled variables straight from their arrays.
func fused[T num](sub bool, a, b knode[T]) func(fr *frame[T], off int, out []T) []T {
	if a.lin && b.lin {
		return func(fr *frame[T], off int, out []T) []T {
			sa, sb := a.ls(fr), b.ls(fr)
			if sub {
				sb = -sb
			}
			n := len(out)
			x, y := fr.vars[a.lv][off:off+n], fr.vars[b.lv][off:off+n]
			axpby(out, sa, x, sb, y)
			return out
		}
	}
	if a.lin {
		return func(fr *frame[T], off int, out []T) []T {
			y := b.run(fr, off, out)
			n := len(out)
			x, sa := fr.vars[a.lv][off:off+n], a.ls(fr)
			var sb T = 1
			if sub {
				sb = -1
			}
			axpby(out, sa, x, sb, y)
			return out
		}
	}
	return func(fr *frame[T], off int, out []T) []T {
		x := a.run(fr, off, out)
		n := len(out)
		y, sb := fr.vars[b.lv][off:off+n], b.ls(fr)
		if sub {
			sb = -sb
		}
		axpby(out, 1, x, sb, y)
		return out
	}
}

// axpby is out = a*x + b*y, unrolled by four. out may be x or y.
func axpby[T num](out []T, a T, x []T, b T, y []T) {
	n := len(out)
	x, y = x[:n], y[:n]
	i := 0
	for ; i+4 <= n; i += 4 {
		o, xs, ys := out[i:i+4:i+4], x[i:i+4:i+4], y[i:i+4:i+4]
		o[0] = a*xs[0] + b*ys[0]
		o[1] = a*xs[1] + b*ys[1]
		o[2] = a*xs[2] + b*ys[2]
		o[3] = a*xs[3] + b*ys[3]
	}
	for ; i < n; i++ {
		out[i] = a*x[i] + b*y[i]
	}
}

func (c *compiler[T]) binary1(op gpu.Op, a, b knode[T]) knode[T] {
	f := binFunc[T](op)
	switch {
	case a.scalar && b.scalar:
		return knode[T]{scalar: true, sv: func(fr *frame[T]) T { return f(fr, a.sv(fr), b.sv(fr)) }}
	case b.scalar:
		// The common operations get loops of their own; the rest call f.
		var loop func(out, x []T, s T)
		switch op {
		case gpu.OpAdd:
			loop = func(out, x []T, s T) {
				x = x[:len(out)]
				for i := range out {
					out[i] = x[i] + s
				}
			}
		case gpu.OpSub:
			loop = func(out, x []T, s T) {
				x = x[:len(out)]
				for i := range out {
					out[i] = x[i] - s
				}
			}
		case gpu.OpMul:
			loop = func(out, x []T, s T) {
				x = x[:len(out)]
				for i := range out {
					out[i] = x[i] * s
				}
			}
		}
		return knode[T]{run: func(fr *frame[T], off int, out []T) []T {
			x, s := a.run(fr, off, out), b.sv(fr)
			if loop != nil {
				loop(out, x, s)
				return out
			}
			for i := range out {
				out[i] = f(fr, x[i], s)
			}
			return out
		}}
	case a.scalar:
		var loop func(out []T, s T, y []T)
		switch op {
		case gpu.OpAdd:
			loop = func(out []T, s T, y []T) {
				y = y[:len(out)]
				for i := range out {
					out[i] = s + y[i]
				}
			}
		case gpu.OpSub:
			loop = func(out []T, s T, y []T) {
				y = y[:len(out)]
				for i := range out {
					out[i] = s - y[i]
				}
			}
		case gpu.OpMul:
			loop = func(out []T, s T, y []T) {
				y = y[:len(out)]
				for i := range out {
					out[i] = s * y[i]
				}
			}
		}
		return knode[T]{run: func(fr *frame[T], off int, out []T) []T {
			s, y := a.sv(fr), b.run(fr, off, out)
			if loop != nil {
				loop(out, s, y)
				return out
			}
			for i := range out {
				out[i] = f(fr, s, y[i])
			}
			return out
		}}
	}
	buf := c.newBuf()
	var loop func(out, x, y []T)
	switch op {
	case gpu.OpAdd:
		loop = func(out, x, y []T) {
			x, y = x[:len(out)], y[:len(out)]
			for i := range out {
				out[i] = x[i] + y[i]
			}
		}
	case gpu.OpSub:
		loop = func(out, x, y []T) {
			x, y = x[:len(out)], y[:len(out)]
			for i := range out {
				out[i] = x[i] - y[i]
			}
		}
	case gpu.OpMul:
		loop = func(out, x, y []T) {
			x, y = x[:len(out)], y[:len(out)]
			for i := range out {
				out[i] = x[i] * y[i]
			}
		}
	}
	return knode[T]{run: func(fr *frame[T], off int, out []T) []T {
		x := a.run(fr, off, out)
		y := b.run(fr, off, fr.bufs[buf][:len(out)])
		if loop != nil {
			loop(out, x, y)
			return out
		}
		for i := range out {
			out[i] = f(fr, x[i], y[i])
		}
		return out
	}}
}

func (c *compiler[T]) sel(n *gpu.Node) knode[T] {
	cond, a, b := c.node(n.Args[0]), c.node(n.Args[1]), c.node(n.Args[2])
	if cond.scalar && a.scalar && b.scalar {
		return knode[T]{scalar: true, sv: func(fr *frame[T]) T {
			if cond.sv(fr) != 0 {
				return a.sv(fr)
			}
			return b.sv(fr)
		}}
	}
	ba, bb := c.newBuf(), c.newBuf()
	get := func(k knode[T], fr *frame[T], off int, buf []T) []T {
		if k.scalar {
			v := k.sv(fr)
			for i := range buf {
				buf[i] = v
			}
			return buf
		}
		return k.run(fr, off, buf)
	}
	return knode[T]{run: func(fr *frame[T], off int, out []T) []T {
		cv := get(cond, fr, off, out)
		x := get(a, fr, off, fr.bufs[ba][:len(out)])
		y := get(b, fr, off, fr.bufs[bb][:len(out)])
		for i := range out {
			if cv[i] != 0 {
				out[i] = x[i]
			} else {
				out[i] = y[i]
			}
		}
		return out
	}}
}

// frame prepares a frame for one goroutine working on up to n elements.
func (p *program[T]) frame(vars [][]T, scal []T, n int) *frame[T] {
	fr := &frame[T]{vars: vars, scal: scal, bufs: make([][]T, p.nbufs)}
	size := min(chunk, n)
	for i := range fr.bufs {
		fr.bufs[i] = make([]T, size)
	}
	return fr
}

// split runs f over [0, n) in contiguous ranges of whole chunks, one per
// goroutine, and reports whether any of them found a division by zero.
func (b *Backend) split(ctx context.Context, n int, f func(lo, hi int) bool) (bool, error) {
	w := min(b.workers, (n+minPerWorker-1)/minPerWorker)
	if w <= 1 {
		return f(0, n), ctx.Err()
	}
	chunks := (n + chunk - 1) / chunk
	per := (chunks + w - 1) / w
	var wg sync.WaitGroup
	var mu sync.Mutex
	dz := false
	for lo := 0; lo < n; lo += per * chunk {
		hi := min(n, lo+per*chunk)
		wg.Go(func() {
			if ctx.Err() != nil {
				return
			}
			if f(lo, hi) {
				mu.Lock()
				dz = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return dz, ctx.Err()
}

// operands gives the typed views of op's arguments.
func operands[T num](b *Backend, args []gpu.Operand) ([][]T, []T, []bool, error) {
	vars := make([][]T, len(args))
	scal := make([]T, len(args))
	isArr := make([]bool, len(args))
	for i, a := range args {
		if !a.IsArray {
			if isFloat[T]() {
				scal[i] = T(a.Scalar.Float64())
			} else {
				scal[i] = T(a.Scalar.Int64())
			}
			continue
		}
		buf, err := b.buf(a.Array)
		if err != nil {
			return nil, nil, nil, err
		}
		vars[i], isArr[i] = view[T](buf), true
	}
	return vars, scal, isArr, nil
}

func prog[T num](b *Backend, e *gpu.Expr, t gpu.DType, isArr []bool) *program[T] {
	k := progKey{src: e.Src, t: t}
	ks := make([]byte, len(isArr))
	for i, a := range isArr {
		ks[i] = 's'
		if a {
			ks[i] = 'a'
		}
	}
	k.isArr = string(ks)
	if p, ok := b.progs.Load(k); ok {
		return p.(*program[T])
	}
	p := compile[T](e, isArr)
	b.progs.Store(k, p)
	return p
}

// Map evaluates an expression into Dst.
func (b *Backend) Map(ctx context.Context, m gpu.MapOp) error {
	switch m.DType {
	case gpu.Float32:
		return mapT[float32](ctx, b, m)
	case gpu.Float64:
		return mapT[float64](ctx, b, m)
	case gpu.Int32:
		return mapT[int32](ctx, b, m)
	case gpu.Int64:
		return mapT[int64](ctx, b, m)
	}
	return gpu.Errorf(gpu.ErrDType, "no element type %s", m.DType)
}

func mapT[T num](ctx context.Context, b *Backend, m gpu.MapOp) error {
	vars, scal, isArr, err := operands[T](b, m.Args)
	if err != nil {
		return err
	}
	dbuf, err := b.buf(m.Dst)
	if err != nil {
		return err
	}
	dst := view[T](dbuf)[:m.N]
	p := prog[T](b, m.Expr, m.DType, isArr)
	if p.root.scalar { // no array in the expression: a fill
		fill(dst, p.root.sv(p.frame(vars, scal, 0)))
		return nil
	}
	// An output that is also an operand goes through a scratch chunk:
	// the root may write its output before it has read every operand.
	aliased := false
	for i, a := range m.Args {
		aliased = aliased || (a.IsArray && a.Array == m.Dst && isArr[i])
	}
	dz, err := b.split(ctx, m.N, func(lo, hi int) bool {
		fr := p.frame(vars, scal, hi-lo)
		var tmp []T
		if aliased {
			tmp = make([]T, min(chunk, hi-lo))
		}
		for off := lo; off < hi; off += chunk {
			n := min(chunk, hi-off)
			out := dst[off : off+n]
			if aliased {
				copy(out, p.root.run(fr, off, tmp[:n]))
			} else if r := p.root.run(fr, off, out); &r[0] != &out[0] {
				copy(out, r) // the expression is a bare operand
			}
		}
		return fr.divZero
	})
	if err != nil {
		return err
	}
	if dz {
		return gpu.Errorf(gpu.ErrDivideByZero, "%q: integer division by zero", m.Expr.Src)
	}
	return nil
}
