package gputest

import (
	"math"

	"github.com/gopyro/gopyro/gpu"
)

// The reference implementation: one element at a time, straight from the
// expression tree, with the documented semantics of each type. It is slow
// and obvious on purpose.

type elem interface {
	float32 | float64 | int32 | int64
}

func isFloat[T elem]() bool {
	var x T = 1
	x /= 2
	return x != 0
}

// refEval evaluates n at element i; divZero is set by an integer division
// by zero.
func refEval[T elem](n *gpu.Node, vars [][]T, scal []T, i int, divZero *bool) T {
	arg := func(k int) T { return refEval(n.Args[k], vars, scal, i, divZero) }
	b2 := func(ok bool) T {
		if ok {
			return 1
		}
		return 0
	}
	f := func(g func(float64) float64) T { return T(g(float64(arg(0)))) }
	switch n.Op {
	case gpu.OpConst:
		if isFloat[T]() {
			return T(n.Value)
		}
		return T(int64(n.Value))
	case gpu.OpVar:
		if vars[n.Var] != nil {
			return vars[n.Var][i]
		}
		return scal[n.Var]
	case gpu.OpNeg:
		return -arg(0)
	case gpu.OpAdd:
		return arg(0) + arg(1)
	case gpu.OpSub:
		return arg(0) - arg(1)
	case gpu.OpMul:
		return arg(0) * arg(1)
	case gpu.OpDiv:
		a, b := arg(0), arg(1)
		if !isFloat[T]() && b == 0 {
			*divZero = true
			return 0
		}
		return a / b
	case gpu.OpRem:
		a, b := arg(0), arg(1)
		if isFloat[T]() {
			return T(math.Mod(float64(a), float64(b)))
		}
		if b == 0 {
			*divZero = true
			return 0
		}
		return T(int64(a) % int64(b))
	case gpu.OpEq:
		return b2(arg(0) == arg(1))
	case gpu.OpNe:
		return b2(arg(0) != arg(1))
	case gpu.OpLt:
		return b2(arg(0) < arg(1))
	case gpu.OpLe:
		return b2(arg(0) <= arg(1))
	case gpu.OpGt:
		return b2(arg(0) > arg(1))
	case gpu.OpGe:
		return b2(arg(0) >= arg(1))
	case gpu.OpSqrt:
		return f(math.Sqrt)
	case gpu.OpExp:
		return f(math.Exp)
	case gpu.OpLog:
		return f(math.Log)
	case gpu.OpSin:
		return f(math.Sin)
	case gpu.OpCos:
		return f(math.Cos)
	case gpu.OpTan:
		return f(math.Tan)
	case gpu.OpFloor:
		return f(math.Floor)
	case gpu.OpCeil:
		return f(math.Ceil)
	case gpu.OpPow:
		return T(math.Pow(float64(arg(0)), float64(arg(1))))
	case gpu.OpAbs:
		a := arg(0)
		if a < 0 {
			return -a
		}
		return a
	case gpu.OpMin:
		return min(arg(0), arg(1))
	case gpu.OpMax:
		return max(arg(0), arg(1))
	case gpu.OpSelect:
		if arg(0) != 0 {
			return arg(1)
		}
		return arg(2)
	}
	panic("gputest: unknown op")
}

// refGemm is C = alpha*op(A)*op(B) + beta*C by the definition.
func refGemm(alpha float64, a []float64, ar, ac int, transA bool, b []float64, br, bc int, transB bool, beta float64, c []float64) []float64 {
	at := func(i, k int) float64 {
		if transA {
			return a[k*ac+i]
		}
		return a[i*ac+k]
	}
	bt := func(k, j int) float64 {
		if transB {
			return b[j*bc+k]
		}
		return b[k*bc+j]
	}
	m, k := ar, ac
	if transA {
		m, k = ac, ar
	}
	n := bc
	if transB {
		n = br
	}
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for x := range k {
				s += at(i, x) * bt(x, j)
			}
			out[i*n+j] = alpha*s + beta*c[i*n+j]
		}
	}
	return out
}
