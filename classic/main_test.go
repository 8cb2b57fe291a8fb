package classic_test

import (
	"os"
	"testing"

	"github.com/gopyro/gopyro/classic"
	"github.com/gopyro/gopyro/internal/testutil"
)

func TestMain(m *testing.M) {
	if classic.IsWorker() {
		classic.ServeWorker()
	}
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}
