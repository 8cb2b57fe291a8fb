// Package cookbook is chapter 6 of the Python Parallel Programming
// Cookbook (PyCUDA, NumbaPro) as a remote service: each recipe runs on a
// gopyro GPU compute service through a client, prints what the book
// prints, and checks its own result.
//
// The recipes: (1) double a 5×5 matrix with a kernel, (2) a 5×5 matrix
// product against a plain host loop, (3) GPUArray's 2*a on 4×4, (4) the
// ElementwiseKernel c = 2*x + 5*y on 50 random numbers, (5) the
// ReductionKernel dot product of arange(400) with itself, (6) cuBLAS GEMM
// on 10×10.
package cookbook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strings"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/gpu"
)

// Serve serves a GPU compute service on backend b over ln until ctx is
// done, and returns its URI once it serves.
func Serve(ctx context.Context, ln net.Listener, b gpu.Backend, cfg gpu.Config) (string, <-chan error, error) {
	d, err := daemon.New()
	if err != nil {
		return "", nil, err
	}
	s, err := gpu.NewService(ctx, b, cfg)
	if err != nil {
		return "", nil, err
	}
	errc := make(chan error, 1)
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx, ln) }()
	select {
	case <-d.Ready():
	case err := <-served:
		return "", nil, err
	}
	u, err := s.Register(d)
	if err != nil {
		d.Close()
		return "", nil, errors.Join(err, <-served)
	}
	go func() {
		err := <-served
		errc <- errors.Join(err, s.Close())
	}()
	return u.String(), errc, nil
}

// Recipes runs every recipe against the service of c, printing to out.
func Recipes(ctx context.Context, c *gpu.Client, out io.Writer) error {
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "backend %s: %s\n", info.Backend, info.Devices[0])
	for i, r := range []func(context.Context, *gpu.Client, io.Writer) error{
		DoubleMatrix, MatrixProduct, GPUArray, Elementwise, Reduction, Gemm,
	} {
		fmt.Fprintf(out, "--- recipe %d\n", i+1)
		if err := r(ctx, c, out); err != nil {
			return fmt.Errorf("recipe %d: %w", i+1, err)
		}
	}
	return nil
}

func printMatrix[T gpu.Number](out io.Writer, h gpu.Host[T]) {
	rows, cols := h.Shape[0], h.Shape[1]
	for i := range rows {
		var b strings.Builder
		if i == 0 {
			b.WriteString("[[")
		} else {
			b.WriteString(" [")
		}
		for j := range cols {
			if j > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%10.6f", float64(h.At(i, j)))
		}
		b.WriteByte(']')
		if i == rows-1 {
			b.WriteByte(']')
		}
		fmt.Fprintln(out, b.String())
	}
}

// maxDiffToHost is the largest difference between got and the product of
// the n×n matrices a and b computed by a plain loop on the host.
func maxDiffToHost[T float32 | float64](a, b []T, got gpu.Host[T]) float64 {
	n := got.Shape[0]
	var d float64
	for i := range n {
		for j := range n {
			var s T
			for k := range n {
				s += a[i*n+k] * b[k*n+j]
			}
			d = max(d, math.Abs(float64(s-got.At(i, j))))
		}
	}
	return d
}

func randn(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// doubleKernel is the book's PyCUDA kernel.
const doubleKernel = `
__global__ void doubleMatrix(float *a) {
    int idx = threadIdx.x + threadIdx.y*5;
    a[idx] *= 2;
}`

// DoubleMatrix is recipe 1: a kernel doubles a 5×5 matrix in place. On a
// backend without custom kernels (the CPU backend) it says so and doubles
// with an element-wise expression instead.
func DoubleMatrix(ctx context.Context, c *gpu.Client, out io.Writer) error {
	r := rand.New(rand.NewPCG(1, 1))
	host := gpu.NewMatrix(5, 5, randn(r, 25))
	a, err := gpu.Upload(ctx, c, host)
	if err != nil {
		return err
	}
	defer a.Free(ctx)
	err = c.Launch(ctx, gpu.Kernel{Source: doubleKernel, Name: "doubleMatrix"}, gpu.Dim3{X: 1}, gpu.Dim3{X: 5, Y: 5}, a)
	if errors.Is(err, gpu.ErrUnsupported) {
		fmt.Fprintln(out, "(this backend runs no custom kernels: doubling with the expression 2*a instead)")
		err = c.MapInto(ctx, a, "2*a", gpu.Args{"a": a})
	}
	if err != nil {
		return err
	}
	doubled, err := gpu.Download[float32](ctx, a)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "ORIGINAL MATRIX")
	printMatrix(out, host)
	fmt.Fprintln(out, "DOUBLED MATRIX AFTER PyCUDA EXECUTION")
	printMatrix(out, doubled)
	for i, v := range host.Data {
		if doubled.Data[i] != 2*v {
			return fmt.Errorf("element %d: %v is not twice %v", i, doubled.Data[i], v)
		}
	}
	return nil
}

// MatrixProduct is recipe 2: a 5×5 product on the device against a plain
// loop on the host.
func MatrixProduct(ctx context.Context, c *gpu.Client, out io.Writer) error {
	const n = 5
	r := rand.New(rand.NewPCG(2, 2))
	ha, hb := randn(r, n*n), randn(r, n*n)
	a, err := gpu.Upload(ctx, c, gpu.NewMatrix(n, n, ha))
	if err != nil {
		return err
	}
	b, err := gpu.Upload(ctx, c, gpu.NewMatrix(n, n, hb))
	if err != nil {
		return err
	}
	p, err := c.MatMul(ctx, a, b)
	if err != nil {
		return err
	}
	hc, err := gpu.Download[float32](ctx, p)
	if err != nil {
		return err
	}
	maxDiff := maxDiffToHost(ha, hb, hc)
	fmt.Fprintln(out, strings.Repeat("-", 80))
	fmt.Fprintln(out, "Matrix A (GPU):")
	printMatrix(out, gpu.NewMatrix(n, n, ha))
	fmt.Fprintln(out, "Matrix B (GPU):")
	printMatrix(out, gpu.NewMatrix(n, n, hb))
	fmt.Fprintln(out, "Matrix C (GPU):")
	printMatrix(out, hc)
	fmt.Fprintln(out, strings.Repeat("-", 80))
	fmt.Fprintf(out, "CPU-GPU difference: %g\n", maxDiff)
	for _, x := range []*gpu.Array{a, b, p} {
		if err := x.Free(ctx); err != nil {
			return err
		}
	}
	if maxDiff > 1e-5 {
		return fmt.Errorf("the device and host products differ by %g", maxDiff)
	}
	return nil
}

// GPUArray is recipe 3: 2*a of a 4×4 array, with the array kept on the
// device.
func GPUArray(ctx context.Context, c *gpu.Client, out io.Writer) error {
	r := rand.New(rand.NewPCG(3, 3))
	host := gpu.NewMatrix(4, 4, randn(r, 16))
	a, err := gpu.Upload(ctx, c, host)
	if err != nil {
		return err
	}
	d, err := c.Scale(ctx, 2, a)
	if err != nil {
		return err
	}
	doubled, err := gpu.Download[float32](ctx, d)
	if err != nil {
		return err
	}
	again, err := gpu.Download[float32](ctx, a)
	if err != nil {
		return err
	}
	printMatrix(out, doubled)
	printMatrix(out, again)
	for i, v := range host.Data {
		if doubled.Data[i] != 2*v || again.Data[i] != v {
			return fmt.Errorf("element %d: 2*%v gave %v, and a is now %v", i, v, doubled.Data[i], again.Data[i])
		}
	}
	return errors.Join(a.Free(ctx), d.Free(ctx))
}

// Elementwise is recipe 4: the ElementwiseKernel linear combination
// c = 2*x + 5*y of two random vectors of 50 numbers.
func Elementwise(ctx context.Context, c *gpu.Client, out io.Writer) error {
	x, err := c.Random(ctx, gpu.Float32, 4, 50)
	if err != nil {
		return err
	}
	y, err := c.Random(ctx, gpu.Float32, 5, 50)
	if err != nil {
		return err
	}
	z, err := c.Zeros(ctx, gpu.Float32, 50)
	if err != nil {
		return err
	}
	if err := c.MapInto(ctx, z, "a*x + b*y", gpu.Args{"a": 2.0, "x": x, "b": 5.0, "y": y}); err != nil {
		return err
	}
	hx, err := gpu.Download[float32](ctx, x)
	if err != nil {
		return err
	}
	hy, err := gpu.Download[float32](ctx, y)
	if err != nil {
		return err
	}
	hz, err := gpu.Download[float32](ctx, z)
	if err != nil {
		return err
	}
	var norm float64
	for i := range hz.Data {
		d := float64(hz.Data[i] - (2*hx.Data[i] + 5*hy.Data[i]))
		norm += d * d
	}
	norm = math.Sqrt(norm)
	fmt.Fprintf(out, "INPUT VECTOR x: %s\n", vec(hx.Data))
	fmt.Fprintf(out, "INPUT VECTOR y: %s\n", vec(hy.Data))
	fmt.Fprintf(out, "OUTPUT VECTOR c = 2*x + 5*y: %s\n", vec(hz.Data))
	fmt.Fprintf(out, "norm of c - (2*x + 5*y): %g (< 1e-5: %v)\n", norm, norm < 1e-5)
	if norm >= 1e-5 {
		return fmt.Errorf("the norm of the difference is %g", norm)
	}
	return errors.Join(x.Free(ctx), y.Free(ctx), z.Free(ctx))
}

func vec(x []float32) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range x {
		if i == 4 && len(x) > 6 {
			fmt.Fprintf(&b, " ... %.6f", x[len(x)-1])
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.6f", v)
	}
	b.WriteByte(']')
	return b.String()
}

// Reduction is recipe 5: the ReductionKernel dot product of arange(400)
// with itself, 21253400.
func Reduction(ctx context.Context, c *gpu.Client, out io.Writer) error {
	x, err := c.Arange(ctx, gpu.Float32, 0, 400, 1)
	if err != nil {
		return err
	}
	defer x.Free(ctx)
	s, err := c.Reduce(ctx, "sum", "x*y", gpu.Args{"x": x, "y": x})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%.1f\n", s.Float64())
	if s.Float64() != 21253400 {
		return fmt.Errorf("dot(arange(400), arange(400)) = %v, want 21253400", s)
	}
	return nil
}

// Gemm is recipe 6: NumbaPro's cuBLAS GEMM on 10×10 random matrices,
// D = A·B, against the host.
func Gemm(ctx context.Context, c *gpu.Client, out io.Writer) error {
	const n = 10
	r := rand.New(rand.NewPCG(6, 6))
	ha, hb := make([]float64, n*n), make([]float64, n*n)
	for i := range ha {
		ha[i], hb[i] = r.Float64(), r.Float64()
	}
	a, err := gpu.Upload(ctx, c, gpu.NewMatrix(n, n, ha))
	if err != nil {
		return err
	}
	b, err := gpu.Upload(ctx, c, gpu.NewMatrix(n, n, hb))
	if err != nil {
		return err
	}
	d, err := c.Zeros(ctx, gpu.Float64, n, n)
	if err != nil {
		return err
	}
	if err := c.Gemm(ctx, 1, a, false, b, false, 0, d); err != nil {
		return err
	}
	hd, err := gpu.Download[float64](ctx, d)
	if err != nil {
		return err
	}
	maxErr := maxDiffToHost(ha, hb, hd)
	fmt.Fprintf(out, "Maximum error %f\n", maxErr)
	if maxErr > 1e-12 {
		return fmt.Errorf("GEMM differs from the host by %g", maxErr)
	}
	return errors.Join(a.Free(ctx), b.Free(ctx), d.Free(ctx))
}
