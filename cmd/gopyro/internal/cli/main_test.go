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
	goleak.VerifyTestMain(m)
}
