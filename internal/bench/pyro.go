package bench

import (
	"bufio"
	"context"
	"embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopyro/gopyro/daemon"
)

//go:embed python/*.py
var pyroScripts embed.FS

// pyroEcho is the object a Python client calls on the gopyro daemon: the
// same as the Python daemon's.
type pyroEcho struct{}

func (pyroEcho) Echo(v any) any { return v }

// Pyro measures a Python Pyro4 client calling a gopyro daemon against the
// same client calling a Python Pyro4 daemon, in the same run: per
// serializer, a small call (a short str) and a list of 1000 ints. python
// is a Python 3 with Pyro4. The two daemons are measured in turn, runs
// times each, and the medians reported.
func Pyro(ctx context.Context, python string, d time.Duration, runs int) ([]ClassicResult, error) {
	dir, err := os.MkdirTemp("", "gopyro-bench-pyro")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for _, name := range []string{"pyro_server.py", "pyro_client.py"} {
		b, _ := pyroScripts.ReadFile("python/" + name)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, err
		}
	}

	// The gopyro daemon.
	dm, stop, err := serveDaemon(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	gu, err := dm.Register(pyroEcho{}, daemon.WithID("bench"))
	if err != nil {
		return nil, err
	}

	// The Python daemon.
	srv := exec.CommandContext(ctx, python, "-u", filepath.Join(dir, "pyro_server.py"))
	out, err := srv.StdoutPipe()
	if err != nil {
		return nil, err
	}
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	pu, ok := strings.CutPrefix(strings.TrimSpace(line), "uri ")
	if err != nil || !ok {
		return nil, fmt.Errorf("the Python Pyro4 daemon did not start: %q %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()

	measure := func(uri, ser, kind string) (float64, error) {
		b, err := exec.CommandContext(ctx, python, filepath.Join(dir, "pyro_client.py"), uri, ser, strconv.FormatFloat(d.Seconds(), 'f', -1, 64), kind).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("pyro_client.py %s %s %s: %v: %s", uri, ser, kind, err, b)
		}
		return strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	}
	var results []ClassicResult
	for _, ser := range []string{"serpent", "marshal", "json", "msgpack"} {
		for _, kind := range []string{"small", "list"} {
			var g, p []float64
			for range max(runs, 1) {
				r, err := measure(gu.String(), ser, kind)
				if err != nil {
					return nil, err
				}
				g = append(g, r)
				if r, err = measure(pu, ser, kind); err != nil {
					return nil, err
				}
				p = append(p, r)
			}
			what := "echo('hello')"
			if kind == "list" {
				what = "echo(list(range(1000)))"
			}
			results = append(results, ClassicResult{
				Case: "pyro4-" + ser + "-" + kind, Unit: "calls/s", Rate: medianOf(g),
				Baseline: "Python Pyro4 daemon", BaseRate: medianOf(p),
				Doc: "a Python Pyro4 client (" + ser + ") calling " + what + " on a gopyro daemon, against the same client calling a Python Pyro4 daemon",
			})
		}
	}
	return results, nil
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
