package gpu

import "context"

// Handle names an array on a backend; the backend chooses it.
type Handle uint64

// Backend runs array work on one device: the CPU backend (package
// gpu/cpu), or the CUDA worker. The service checks every operation
// (types, shapes, limits, kernels' grids) before it reaches a backend, so
// a backend may assume well-formed requests; it still reports its own
// failures (out of device memory, a kernel that fails) as errors.
//
// Arrays are flat, row-major, of n elements of one DType. A backend is
// used by many goroutines at once; the service never writes an array
// while another operation reads or writes it.
type Backend interface {
	// Info describes the backend and its devices.
	Info(ctx context.Context) (Info, error)
	// Alloc makes an array of n elements of t: all zero when zero is
	// set, else of any contents (the caller writes every element).
	Alloc(ctx context.Context, t DType, n int, zero bool) (Handle, error)
	// Free releases an array.
	Free(h Handle) error
	// Write copies data (little-endian elements) into the array at byte
	// offset off; Read copies the bytes at off into dst.
	Write(ctx context.Context, h Handle, off int64, data []byte) error
	Read(ctx context.Context, h Handle, off int64, dst []byte) error
	// Gemm computes C = alpha*op(A)*op(B) + beta*C (row-major).
	Gemm(ctx context.Context, g GemmOp) error
	// Map evaluates an element-wise expression into Dst.
	Map(ctx context.Context, m MapOp) error
	// Reduce evaluates an element-wise expression and reduces it.
	Reduce(ctx context.Context, r ReduceOp) (Scalar, error)
	// Fill sets the first n elements of h to v (of h's type).
	Fill(ctx context.Context, h Handle, n int, v Scalar) error
	// Arange sets element i of h to start + i*step, for i < n.
	Arange(ctx context.Context, h Handle, n int, start, step Scalar) error
	// Random fills h with uniform numbers: floats in [0, 1), integers in
	// [0, 2^31). The same seed gives the same numbers on one backend.
	Random(ctx context.Context, h Handle, n int, seed uint64) error
	// Launch runs a custom kernel.
	Launch(ctx context.Context, l LaunchOp) error
	// Close frees everything.
	Close() error
}

// GemmOp is C = Alpha*op(A)*op(B) + Beta*C with op(A) of M×K, op(B) of
// K×N and C of M×N, all row-major; op(X) is X or, with TransX, its
// transpose (so A is stored K×M when TransA). C never aliases A or B.
type GemmOp struct {
	DType          DType // Float32 or Float64
	TransA, TransB bool
	M, N, K        int
	Alpha, Beta    float64
	A, B, C        Handle
}

// Operand is the value of one of an expression's variables: an array of
// the expression's type and length, or a scalar of its type.
type Operand struct {
	IsArray bool
	Array   Handle
	Scalar  Scalar
}

// MapOp evaluates Expr over N elements of type DType into Dst. Args hold
// the values of Expr.Vars, in order. Dst may be one of the array
// operands. An integer division by zero fails with ErrDivideByZero.
type MapOp struct {
	Expr  *Expr
	DType DType
	N     int
	Dst   Handle
	Args  []Operand
}

// Reductions.
const (
	ReduceSum  = "sum"
	ReduceProd = "prod"
	ReduceMin  = "min"
	ReduceMax  = "max"
)

// ReduceOp evaluates Expr over N elements and reduces them with Op (one
// of the Reduce constants). Sums and products of floats are computed in
// float64 (sums pairwise) and returned as Float64; of integers, exactly in
// int64 (wrapping past its range) and returned as Int64. Min and max
// return the arrays' type; a NaN makes them NaN.
type ReduceOp struct {
	Op    string
	Expr  *Expr
	DType DType
	N     int
	Args  []Operand
}

// Dim3 is a grid or block size.
type Dim3 struct {
	X, Y, Z int
}

// Kernel is a custom kernel: CUDA C source (compiled with NVRTC) or PTX,
// and the name of its entry function.
type Kernel struct {
	Source string `msgpack:"source"`
	PTX    bool   `msgpack:"ptx,omitempty"`
	Name   string `msgpack:"name"`
}

// KernelArg is one argument of a kernel: an array (a device pointer) or a
// scalar of exactly its type.
type KernelArg struct {
	IsArray bool
	Array   Handle
	Scalar  Scalar
}

// LaunchOp runs Kernel over Grid blocks of Block threads.
type LaunchOp struct {
	Kernel      Kernel
	Grid, Block Dim3
	SharedMem   int
	Args        []KernelArg
}
