package cpu_test

import (
	"context"
	"testing"

	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/gpu/cpu"
	"github.com/gopyro/gopyro/gpu/gputest"
)

// BenchmarkMapBackend is a*x + b*y over 16M float32 on the backend
// itself; BenchmarkCopy the copy loop it is compared with.
func BenchmarkMapBackend(b *testing.B) {
	const n = 16 << 20
	ctx := context.Background()
	be := cpu.New()
	h := make([]gpu.Handle, 3)
	for i := range h {
		var err error
		if h[i], err = be.Alloc(ctx, gpu.Float32, n, true); err != nil {
			b.Fatal(err)
		}
	}
	e, err := gpu.ParseExpr("a*x + b*y")
	if err != nil {
		b.Fatal(err)
	}
	op := gpu.MapOp{Expr: e, DType: gpu.Float32, N: n, Dst: h[2], Args: []gpu.Operand{
		{Scalar: gpu.FloatScalar(gpu.Float32, 2)}, {IsArray: true, Array: h[0]},
		{Scalar: gpu.FloatScalar(gpu.Float32, 5)}, {IsArray: true, Array: h[1]}}}
	b.SetBytes(3 * 4 * n)
	for b.Loop() {
		if err := be.Map(ctx, op); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCopy(b *testing.B) {
	src, dst := make([]float32, 16<<20), make([]float32, 16<<20)
	b.SetBytes(2 * 4 * 16 << 20)
	for b.Loop() {
		copy(dst, src)
	}
}

// BenchmarkUpload and BenchmarkDownload move 256 MiB through the service.
func BenchmarkUpload(b *testing.B) {
	e := gputest.Start(b, cpu.New(), gpu.Config{})
	c := e.Dial(b)
	data := make([]float32, 64<<20)
	b.SetBytes(256 << 20)
	for b.Loop() {
		a, err := gpu.Upload(context.Background(), c, gpu.NewVector(data))
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Free(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDownload(b *testing.B) {
	e := gputest.Start(b, cpu.New(), gpu.Config{})
	c := e.Dial(b)
	a, err := gpu.Upload(context.Background(), c, gpu.NewVector(make([]float32, 64<<20)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(256 << 20)
	for b.Loop() {
		if _, err := gpu.Download[float32](context.Background(), a); err != nil {
			b.Fatal(err)
		}
	}
}
