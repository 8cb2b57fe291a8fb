package cli

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if uri := os.Getenv(gpuHolderEnv); uri != "" { // this test binary as a GPU client that gets killed
		gpuHolder(uri)
		return
	}
	// The binary buildBinary made goes with the test run.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if binDir != "" {
			_ = os.RemoveAll(binDir)
		}
	}))
}
