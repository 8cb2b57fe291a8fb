package bench

import (
	"context"
	"fmt"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/gpu/cpu"
)

// GPU measures the GPU compute service on the CPU backend, each case
// against a baseline taken in the same run: GEMM against the same gonum
// call made locally, an element-wise expression against a plain copy
// loop's memory bandwidth, transfers against gopyro's 16 MiB echo, and a
// tiny operation against a small gopyro call.
func GPU(ctx context.Context, d time.Duration) ([]ClassicResult, error) {
	dm, stop, err := serveDaemon(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	s, err := gpu.NewService(ctx, cpu.New(), gpu.Config{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	u, err := s.Register(dm)
	if err != nil {
		return nil, err
	}
	c, err := gpu.Dial(ctx, u.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()

	echo, done, err := echoBaseline()
	if err != nil {
		return nil, err
	}
	defer done()

	var out []ClassicResult
	add := func(name, unit, doc, baseline string, f func() error, per float64, base func() error, basePer float64) error {
		r, err := rate(ctx, d, f)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b, err := rate(ctx, d, base)
		if err != nil {
			return fmt.Errorf("%s baseline: %w", name, err)
		}
		out = append(out, ClassicResult{Case: name, Unit: unit, Rate: r * per, Baseline: baseline, BaseRate: b * basePer, Doc: doc})
		return nil
	}

	// GEMM, 1024×1024, data resident.
	const n = 1024
	flops := 2.0 * n * n * n / 1e9
	for _, t := range []gpu.DType{gpu.Float32, gpu.Float64} {
		a, err := c.Random(ctx, t, 1, n, n)
		if err != nil {
			return nil, err
		}
		b, err := c.Random(ctx, t, 2, n, n)
		if err != nil {
			return nil, err
		}
		cc, err := c.Zeros(ctx, t, n, n)
		if err != nil {
			return nil, err
		}
		la, lb, lc := make([]float64, n*n), make([]float64, n*n), make([]float64, n*n)
		sa, sb, sc := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
		for i := range la {
			la[i], lb[i] = float64(i%7), float64(i%5)
			sa[i], sb[i] = float32(i%7), float32(i%5)
		}
		local := func() error {
			if t == gpu.Float32 {
				gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, sa, n, sb, n, 0, sc, n)
			} else {
				gonum.Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, la, n, lb, n, 0, lc, n)
			}
			return nil
		}
		err = add(fmt.Sprintf("gemm-1024-%s", t), "GFLOP/s", "C = A·B, 1024×1024, through the service, data resident",
			"local gonum GEMM", func() error { return c.Gemm(ctx, 1, a, false, b, false, 0, cc) }, flops, local, flops)
		if err != nil {
			return nil, err
		}
		for _, x := range []*gpu.Array{a, b, cc} {
			if err := x.Free(ctx); err != nil {
				return nil, err
			}
		}
	}

	// a*x + b*y over 16M float32 into a resident array.
	const m = 16 << 20
	x, err := c.Random(ctx, gpu.Float32, 3, m)
	if err != nil {
		return nil, err
	}
	y, err := c.Random(ctx, gpu.Float32, 4, m)
	if err != nil {
		return nil, err
	}
	z, err := c.Zeros(ctx, gpu.Float32, m)
	if err != nil {
		return nil, err
	}
	src, dst := make([]float32, m), make([]float32, m)
	for i := range src {
		src[i] = float32(i)
	}
	mb := float64(m*4) / 1e9
	err = add("map-16M-f32", "GB/s", "z = a*x + b*y over 16M float32 (2 reads, 1 write)", "copy loop's bandwidth",
		func() error { return c.MapInto(ctx, z, "a*x + b*y", gpu.Args{"a": 2.0, "x": x, "b": 5.0, "y": y}) }, 3*mb,
		func() error { copy(dst, src); return nil }, 2*mb)
	if err != nil {
		return nil, err
	}
	for _, a := range []*gpu.Array{x, y, z} {
		if err := a.Free(ctx); err != nil {
			return nil, err
		}
	}

	// 256 MiB up and down, against the 16 MiB echo.
	big := make([]float32, 64<<20)
	msg := make([]byte, 16<<20)
	echo16 := func() error { _, err := echo.Call(ctx, "Echo", msg); return err }
	err = add("upload-256MiB", "MB/s", "a 256 MiB array uploaded (and freed)", "gopyro 16 MiB echo", func() error {
		a, err := gpu.Upload(ctx, c, gpu.NewVector(big))
		if err != nil {
			return err
		}
		return a.Free(ctx)
	}, 256*(1<<20)/1e6, echo16, 16*(1<<20)/1e6)
	if err != nil {
		return nil, err
	}
	resident, err := gpu.Upload(ctx, c, gpu.NewVector(big))
	if err != nil {
		return nil, err
	}
	err = add("download-256MiB", "MB/s", "a 256 MiB array downloaded into one host buffer (DownloadInto)", "gopyro 16 MiB echo", func() error {
		return gpu.DownloadInto(ctx, resident, big)
	}, 256*(1<<20)/1e6, echo16, 16*(1<<20)/1e6)
	if err != nil {
		return nil, err
	}
	if err := resident.Free(ctx); err != nil {
		return nil, err
	}

	// A tiny operation against a small call.
	small, err := gpu.Upload(ctx, c, gpu.NewVector(make([]float32, 16)))
	if err != nil {
		return nil, err
	}
	res, err := c.Zeros(ctx, gpu.Float32, 16)
	if err != nil {
		return nil, err
	}
	ping := func() error { _, err := echo.Call(ctx, "Echo", []byte("0123456789abcdef")); return err }
	err = add("scale-16", "calls/s", "s*a on 16 float32 into a resident array (MapInto)", "gopyro echo call",
		func() error { return c.MapInto(ctx, res, "s*a", gpu.Args{"s": 2.0, "a": small}) }, 1, ping, 1)
	if err != nil {
		return nil, err
	}
	err = add("scale-16-new", "calls/s", "Scale of 16 float32 to a new array, then its Free: two calls", "gopyro echo call",
		func() error {
			r, err := c.Scale(ctx, 2, small)
			if err != nil {
				return err
			}
			return r.Free(ctx)
		}, 1, ping, 1)
	return out, err
}
