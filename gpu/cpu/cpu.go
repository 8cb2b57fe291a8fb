// Package cpu is the pure-Go backend of the GPU compute service: GEMM
// through gonum's BLAS, element-wise expressions compiled once into typed
// closures that run over chunks on every core, and parallel reductions
// (pairwise sums for floats, exact integers). It is always available, and
// it is the oracle the other backends are tested against.
package cpu

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/gopyro/gopyro/gpu"
)

// Backend is the CPU backend. The zero value is not usable: call New.
type Backend struct {
	workers int

	mu     sync.RWMutex
	bufs   map[gpu.Handle]*buffer
	closed bool
	next   atomic.Uint64

	progs sync.Map // progKey -> compiled program

	// Freed storage kept for the next array of the same size: a fresh
	// allocation costs a page fault per page, which is most of an
	// upload's time. Bounded by spareLimit bytes; under mu.
	spare      map[int][][]byte
	spareBytes int
	spareLimit int
}

// buffer is one array: n elements of t in 8-byte aligned storage.
type buffer struct {
	t   gpu.DType
	n   int
	raw []byte
}

// New returns a CPU backend that uses every core.
func New() *Backend {
	limit := 1 << 30
	if m := memTotal(); m > 0 && m/8 < int64(limit) {
		limit = int(m / 8)
	}
	return &Backend{workers: runtime.GOMAXPROCS(0), bufs: map[gpu.Handle]*buffer{},
		spare: map[int][][]byte{}, spareLimit: limit}
}

// Info describes the machine's processor and memory.
func (b *Backend) Info(context.Context) (gpu.Info, error) {
	name := cpuModel()
	return gpu.Info{Backend: "cpu", Devices: []gpu.Device{{
		Name: name, Memory: memTotal(), Cores: runtime.NumCPU(),
		Extra: map[string]string{"gemm": "gonum", "goarch": runtime.GOARCH},
	}}}, nil
}

// Alloc makes an array, reusing freed storage of the same size.
func (b *Backend) Alloc(_ context.Context, t gpu.DType, n int, zero bool) (h gpu.Handle, err error) {
	if !t.Valid() || n < 1 {
		return 0, fmt.Errorf("cpu: cannot allocate %d elements of %s", n, t)
	}
	size := n * t.Size()
	b.mu.Lock()
	if l := b.spare[size]; len(l) > 0 {
		raw := l[len(l)-1]
		b.spare[size] = l[:len(l)-1]
		b.spareBytes -= size
		h = gpu.Handle(b.next.Add(1))
		b.bufs[h] = &buffer{t: t, n: n, raw: raw}
		b.mu.Unlock()
		if zero {
			clear(raw)
		}
		return h, nil
	}
	b.mu.Unlock()
	defer func() {
		if r := recover(); r != nil { // make panics when the memory cannot be had
			err = gpu.Errorf(gpu.ErrOutOfMemory, "the CPU backend cannot allocate %s: %v", gpu.FormatBytes(int64(size)), r)
		}
	}()
	words := make([]uint64, (size+7)/8)
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), size)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, fmt.Errorf("cpu: the backend is closed")
	}
	h = gpu.Handle(b.next.Add(1))
	b.bufs[h] = &buffer{t: t, n: n, raw: raw}
	return h, nil
}

func (b *Backend) buf(h gpu.Handle) (*buffer, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	buf, ok := b.bufs[h]
	if !ok {
		return nil, gpu.Errorf(gpu.ErrFreed, "no array with handle %d on the CPU backend", h)
	}
	return buf, nil
}

// Free releases an array.
func (b *Backend) Free(h gpu.Handle) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	buf, ok := b.bufs[h]
	if !ok {
		return gpu.Errorf(gpu.ErrFreed, "no array with handle %d on the CPU backend", h)
	}
	delete(b.bufs, h)
	if size := len(buf.raw); size >= 1<<20 && !b.closed {
		for b.spareBytes+size > b.spareLimit && b.dropSpare() {
		}
		if b.spareBytes+size <= b.spareLimit {
			b.spare[size] = append(b.spare[size], buf.raw)
			b.spareBytes += size
		}
	}
	return nil
}

// dropSpare forgets one spare buffer, the largest; false when none is left.
func (b *Backend) dropSpare() bool {
	big := 0
	for size, l := range b.spare {
		if len(l) > 0 && size > big {
			big = size
		}
	}
	if big == 0 {
		return false
	}
	l := b.spare[big]
	b.spare[big] = l[:len(l)-1]
	b.spareBytes -= big
	if len(l) == 1 {
		delete(b.spare, big)
	}
	return true
}

// Arrays is the number of arrays allocated.
func (b *Backend) Arrays() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.bufs)
}

// Close frees every array.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	clear(b.bufs)
	clear(b.spare)
	b.spareBytes = 0
	return nil
}

func span(buf *buffer, off int64, n int) error {
	if off < 0 || off+int64(n) > int64(len(buf.raw)) {
		return gpu.Errorf(gpu.ErrShape, "bytes %d to %d are outside the array of %d bytes", off, off+int64(n), len(buf.raw))
	}
	return nil
}

// Write copies little-endian data into an array.
func (b *Backend) Write(_ context.Context, h gpu.Handle, off int64, data []byte) error {
	buf, err := b.buf(h)
	if err != nil {
		return err
	}
	if err := span(buf, off, len(data)); err != nil {
		return err
	}
	copy(buf.raw[off:], data)
	if !littleEndian {
		swap(buf.raw[off:off+int64(len(data))], buf.t.Size())
	}
	return nil
}

// Read copies an array's bytes, little-endian, into dst.
func (b *Backend) Read(_ context.Context, h gpu.Handle, off int64, dst []byte) error {
	buf, err := b.buf(h)
	if err != nil {
		return err
	}
	if err := span(buf, off, len(dst)); err != nil {
		return err
	}
	copy(dst, buf.raw[off:])
	if !littleEndian {
		swap(dst, buf.t.Size())
	}
	return nil
}

var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// swap reverses the bytes of each element (only on big-endian machines).
func swap(p []byte, size int) {
	for i := 0; i+size <= len(p); i += size {
		for a, z := i, i+size-1; a < z; a, z = a+1, z-1 {
			p[a], p[z] = p[z], p[a]
		}
	}
}

func view[T any](buf *buffer) []T {
	return unsafe.Slice((*T)(unsafe.Pointer(&buf.raw[0])), buf.n)
}

// Gemm runs gonum's GEMM on row-major data.
func (b *Backend) Gemm(_ context.Context, g gpu.GemmOp) error {
	a, err := b.buf(g.A)
	if err != nil {
		return err
	}
	bb, err := b.buf(g.B)
	if err != nil {
		return err
	}
	c, err := b.buf(g.C)
	if err != nil {
		return err
	}
	tA, tB := blas.NoTrans, blas.NoTrans
	lda, ldb := g.K, g.N
	if g.TransA {
		tA, lda = blas.Trans, g.M
	}
	if g.TransB {
		tB, ldb = blas.Trans, g.K
	}
	switch g.DType {
	case gpu.Float32:
		gonum.Implementation{}.Sgemm(tA, tB, g.M, g.N, g.K, float32(g.Alpha), view[float32](a), lda,
			view[float32](bb), ldb, float32(g.Beta), view[float32](c), g.N)
	case gpu.Float64:
		gonum.Implementation{}.Dgemm(tA, tB, g.M, g.N, g.K, g.Alpha, view[float64](a), lda,
			view[float64](bb), ldb, g.Beta, view[float64](c), g.N)
	default:
		return gpu.Errorf(gpu.ErrDType, "GEMM needs float32 or float64, not %s", g.DType)
	}
	return nil
}

// Fill sets n elements to v.
func (b *Backend) Fill(_ context.Context, h gpu.Handle, n int, v gpu.Scalar) error {
	buf, err := b.buf(h)
	if err != nil {
		return err
	}
	switch buf.t {
	case gpu.Float32:
		fill(view[float32](buf)[:n], float32(v.Float64()))
	case gpu.Float64:
		fill(view[float64](buf)[:n], v.Float64())
	case gpu.Int32:
		fill(view[int32](buf)[:n], int32(v.Int64()))
	case gpu.Int64:
		fill(view[int64](buf)[:n], v.Int64())
	}
	return nil
}

func fill[T num](p []T, v T) {
	for i := range p {
		p[i] = v
	}
}

// Arange sets element i to start + i*step.
func (b *Backend) Arange(_ context.Context, h gpu.Handle, n int, start, step gpu.Scalar) error {
	buf, err := b.buf(h)
	if err != nil {
		return err
	}
	switch buf.t {
	case gpu.Float32:
		p, s0, st := view[float32](buf)[:n], start.Float64(), step.Float64()
		for i := range p {
			p[i] = float32(s0 + float64(i)*st)
		}
	case gpu.Float64:
		p, s0, st := view[float64](buf)[:n], start.Float64(), step.Float64()
		for i := range p {
			p[i] = s0 + float64(i)*st
		}
	case gpu.Int32:
		p, s0, st := view[int32](buf)[:n], start.Int64(), step.Int64()
		for i := range p {
			p[i] = int32(s0 + int64(i)*st)
		}
	case gpu.Int64:
		p, s0, st := view[int64](buf)[:n], start.Int64(), step.Int64()
		for i := range p {
			p[i] = s0 + int64(i)*st
		}
	}
	return nil
}

// Random fills h with uniform numbers from a PCG seeded with seed.
func (b *Backend) Random(_ context.Context, h gpu.Handle, n int, seed uint64) error {
	buf, err := b.buf(h)
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	switch buf.t {
	case gpu.Float32:
		for i, p := 0, view[float32](buf)[:n]; i < len(p); i++ {
			p[i] = r.Float32()
		}
	case gpu.Float64:
		for i, p := 0, view[float64](buf)[:n]; i < len(p); i++ {
			p[i] = r.Float64()
		}
	case gpu.Int32:
		for i, p := 0, view[int32](buf)[:n]; i < len(p); i++ {
			p[i] = r.Int32()
		}
	case gpu.Int64:
		for i, p := 0, view[int64](buf)[:n]; i < len(p); i++ {
			p[i] = int64(r.Int32())
		}
	}
	return nil
}

// Launch is not supported: custom kernels are CUDA C or PTX.
func (b *Backend) Launch(_ context.Context, l gpu.LaunchOp) error {
	what := "CUDA C (compiled with NVRTC)"
	if l.Kernel.PTX {
		what = "PTX"
	}
	return gpu.Errorf(gpu.ErrUnsupported,
		"kernel %q is %s: custom kernels run on the CUDA backend only, and this service runs the CPU backend "+
			"(start gopyro gpu --backend cuda on a machine with an NVIDIA GPU)", l.Kernel.Name, what)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				return "CPU (" + strings.TrimSpace(v) + ")"
			}
		}
	}
	return "CPU (" + runtime.GOARCH + ")"
}

// memTotal is the machine's memory in bytes (0 when unknown).
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
