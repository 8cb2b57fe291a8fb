package cpu_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/gpu/cpu"
	"github.com/gopyro/gopyro/gpu/gputest"
	"github.com/gopyro/gopyro/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance runs the backends' conformance suite on the CPU backend.
func TestConformance(t *testing.T) {
	gputest.Run(t, func(t *testing.T) gpu.Backend { return cpu.New() })
}

// A client that goes away leaves nothing on the device: the backend
// itself, not only the service's books, holds no array afterwards.
func TestDisconnectFreesBackend(t *testing.T) {
	b := cpu.New()
	e := gputest.Start(t, b, gpu.Config{})
	c, err := gpu.Dial(t.Context(), e.URI)
	if err != nil {
		t.Fatal(err)
	}
	x, err := c.Random(t.Context(), gpu.Float32, 1, 1000)
	if err == nil {
		_, err = c.Scale(t.Context(), 2, x)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n := b.Arrays(); n != 2 {
		t.Fatalf("the backend holds %d arrays, want 2", n)
	}
	c.Close()
	testutil.WaitFor(t, 10*time.Second, "the backend's arrays freed", func() bool { return b.Arrays() == 0 })
}
