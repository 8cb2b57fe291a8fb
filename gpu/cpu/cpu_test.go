package cpu_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/gpu/cpu"
	"github.com/gopyro/gopyro/gpu/gputest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance runs the backends' conformance suite on the CPU backend.
func TestConformance(t *testing.T) {
	gputest.Run(t, func(t *testing.T) gpu.Backend { return cpu.New() })
}
