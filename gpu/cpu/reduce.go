package cpu

import (
	"context"

	"github.com/gopyro/gopyro/gpu"
)

// Reduce evaluates an expression chunk by chunk and reduces it. Each
// chunk's partial result is kept by its index, and the partials are
// combined pairwise in that order: the result does not depend on how many
// goroutines ran.
func (b *Backend) Reduce(ctx context.Context, r gpu.ReduceOp) (gpu.Scalar, error) {
	switch r.DType {
	case gpu.Float32:
		return reduceT[float32](ctx, b, r)
	case gpu.Float64:
		return reduceT[float64](ctx, b, r)
	case gpu.Int32:
		return reduceT[int32](ctx, b, r)
	case gpu.Int64:
		return reduceT[int64](ctx, b, r)
	}
	return gpu.Scalar{}, gpu.Errorf(gpu.ErrDType, "no element type %s", r.DType)
}

// acc is a partial result: floats in float64, integers in int64.
type acc struct {
	f float64
	i int64
}

func reduceT[T num](ctx context.Context, b *Backend, r gpu.ReduceOp) (gpu.Scalar, error) {
	vars, scal, isArr, err := operands[T](b, r.Args)
	if err != nil {
		return gpu.Scalar{}, err
	}
	p := prog[T](b, r.Expr, r.DType, isArr)
	flt := isFloat[T]()
	var chunkOf func(x []T) acc
	var combine func(a, b acc) acc
	switch r.Op {
	case gpu.ReduceSum:
		if flt {
			chunkOf = func(x []T) acc { return acc{f: pairwise(x)} }
		} else {
			chunkOf = func(x []T) acc {
				var s int64
				for _, v := range x {
					s += int64(v)
				}
				return acc{i: s}
			}
		}
		combine = func(a, b acc) acc { return acc{f: a.f + b.f, i: a.i + b.i} }
	case gpu.ReduceProd:
		chunkOf = func(x []T) acc {
			f, i := 1.0, int64(1)
			for _, v := range x {
				f *= float64(v)
				i *= int64(v)
			}
			return acc{f: f, i: i}
		}
		combine = func(a, b acc) acc { return acc{f: a.f * b.f, i: a.i * b.i} }
	case gpu.ReduceMin, gpu.ReduceMax:
		isMin := r.Op == gpu.ReduceMin
		chunkOf = func(x []T) acc {
			m := x[0]
			for _, v := range x[1:] {
				if isMin {
					m = min(m, v)
				} else {
					m = max(m, v)
				}
			}
			return acc{f: float64(m), i: int64(m)}
		}
		combine = func(a, b acc) acc {
			if isMin {
				return acc{f: min(a.f, b.f), i: min(a.i, b.i)}
			}
			return acc{f: max(a.f, b.f), i: max(a.i, b.i)}
		}
	default:
		return gpu.Scalar{}, gpu.Errorf(gpu.ErrExpr, "unknown reduction %q (want sum, prod, min or max)", r.Op)
	}
	nchunks := (r.N + chunk - 1) / chunk
	parts := make([]acc, nchunks)
	if p.root.scalar { // a constant expression: every element is the same
		fr := p.frame(vars, scal, 0)
		v := p.root.sv(fr)
		x := make([]T, min(chunk, r.N))
		fill(x, v)
		for c := range parts {
			parts[c] = chunkOf(x[:min(chunk, r.N-c*chunk)])
		}
	} else {
		dz, err := b.split(ctx, r.N, func(lo, hi int) bool {
			fr := p.frame(vars, scal, hi-lo)
			tmp := make([]T, min(chunk, hi-lo))
			for off := lo; off < hi; off += chunk {
				n := min(chunk, hi-off)
				parts[off/chunk] = chunkOf(p.root.run(fr, off, tmp[:n]))
			}
			return fr.divZero
		})
		if err != nil {
			return gpu.Scalar{}, err
		}
		if dz {
			return gpu.Scalar{}, gpu.Errorf(gpu.ErrDivideByZero, "%q: integer division by zero", r.Expr.Src)
		}
	}
	res := combineAll(parts, combine)
	switch {
	case r.Op == gpu.ReduceSum || r.Op == gpu.ReduceProd:
		if flt {
			return gpu.Scalar{DType: gpu.Float64, F: res.f}, nil
		}
		return gpu.Scalar{DType: gpu.Int64, I: res.i}, nil
	case flt:
		return gpu.Scalar{DType: r.DType, F: res.f}, nil
	}
	return gpu.Scalar{DType: r.DType, I: res.i}, nil
}

// combineAll combines partials pairwise.
func combineAll(p []acc, f func(a, b acc) acc) acc {
	if len(p) == 1 {
		return p[0]
	}
	h := len(p) / 2
	return f(combineAll(p[:h], f), combineAll(p[h:], f))
}

// pairwise sums x in float64 by halves, with short runs summed in order:
// the error grows with log n, not n.
func pairwise[T num](x []T) float64 {
	if len(x) <= 128 {
		var s float64
		for _, v := range x {
			s += float64(v)
		}
		return s
	}
	h := len(x) / 2
	return pairwise(x[:h]) + pairwise(x[h:])
}
