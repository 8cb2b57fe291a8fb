package cookbook_test

import (
	"context"
	"net"
	"strings"
	"testing"

	cookbook "github.com/gopyro/gopyro/examples/gpu"
	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/gpu/cpu"
	"github.com/gopyro/gopyro/internal/testutil"
)

// Every recipe runs against a service on the CPU backend, prints what
// the book prints and passes its own check.
func TestRecipes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	uri, errc, err := cookbook.Serve(ctx, ln, cpu.New(), gpu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()
	c, err := gpu.Dial(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out testutil.Lines
	if err := cookbook.Recipes(ctx, c, &out); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(out.All(), "\n")
	for _, want := range []string{
		"backend cpu: CPU",
		"(this backend runs no custom kernels: doubling with the expression 2*a instead)",
		"ORIGINAL MATRIX", "DOUBLED MATRIX AFTER PyCUDA EXECUTION",
		"Matrix C (GPU):", "CPU-GPU difference: 0",
		"OUTPUT VECTOR c = 2*x + 5*y:", "(< 1e-5: true)",
		"\n21253400.0\n",
		"Maximum error 0.000000",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the recipes did not print %q; they printed:\n%s", want, text)
		}
	}
	for i := 1; i <= 6; i++ {
		if !strings.Contains(text, "--- recipe "+string(rune('0'+i))) {
			t.Errorf("recipe %d did not run", i)
		}
	}
	// The recipes free what they make.
	in, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.Arrays != 0 {
		t.Errorf("the recipes left %d arrays", in.Arrays)
	}
}
