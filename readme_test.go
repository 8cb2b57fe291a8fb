package gopyro_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeFree declares, per README Go block, the names the block uses but
// leaves to the reader (a context, a proxy made earlier, ...).
var readmeFree = []string{
	"ctx context.Context",
	"ctx context.Context, p, bank *proxy.Proxy, balance int, listener any",
	"ctx context.Context",
	"ctx context.Context",
	"ctx context.Context",
}

// TestREADMECompiles compiles every Go block of README.md against this
// module's current API. A block's top-level declarations (type, func) stay
// top-level; its statements become the body of a function whose
// parameters are the block's free names. Only "declared and not used"
// errors are forgiven: a snippet shows a result without using it.
func TestREADMECompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) != len(readmeFree) {
		t.Fatalf("README.md has %d Go blocks; readmeFree describes %d", len(blocks), len(readmeFree))
	}
	var top, funcs strings.Builder
	for i, b := range blocks {
		var body strings.Builder
		depth := 0
		for line := range strings.SplitSeq(b[1], "\n") {
			if depth > 0 || strings.HasPrefix(line, "type ") || strings.HasPrefix(line, "func ") {
				top.WriteString(line + "\n")
				depth += strings.Count(line, "{") - strings.Count(line, "}")
				continue
			}
			body.WriteString(line + "\n")
		}
		funcs.WriteString("func block" + string(rune('0'+i)) + "(" + readmeFree[i] + ") {\n" + body.String() + "}\n\n")
	}
	src := `package readme

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/gopyro/gopyro/classic"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/proxy"
)

var _, _, _, _ = fmt.Sprint, os.Stdout, classic.DefaultPort, gpu.DefaultName

` + top.String() + "\n" + funcs.String()

	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := "module readme\n\ngo 1.26\n\nrequire github.com/gopyro/gopyro v0.0.0\n\nreplace github.com/gopyro/gopyro => " + root + "\n"
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "readme.go": []byte(src)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-gcflags=-e", "-mod=mod", ".")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	var errs []string
	for line := range strings.SplitSeq(out.String(), "\n") {
		if strings.Contains(line, "readme.go:") && !strings.Contains(line, "declared and not used") {
			errs = append(errs, line)
		}
	}
	if len(errs) > 0 || (cmd.ProcessState.ExitCode() != 0 && !strings.Contains(out.String(), "declared and not used")) {
		t.Fatalf("README.md's Go does not compile:\n%s\n\nthe program built from it:\n%s", strings.Join(errs, "\n"), src)
	}
}
