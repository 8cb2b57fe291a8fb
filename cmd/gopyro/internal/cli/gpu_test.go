package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver"
)

const gpuHolderEnv = "GOPYRO_TEST_GPU_HOLDER"

// gpuHolder is a client process: it makes two arrays, says so, and waits
// to be killed.
func gpuHolder(uri string) {
	ctx := context.Background()
	c, err := gpu.Dial(ctx, uri)
	if err == nil {
		_, err = c.Random(ctx, gpu.Float32, 1, 1000)
	}
	if err == nil {
		_, err = c.Zeros(ctx, gpu.Float64, 64, 64)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("holding")
	select {}
}

// gopyro gpu registered with gopyro ns, called from other processes
// through PYRONAME:gopyro.gpu; a client killed with SIGKILL leaves nothing
// behind; the name goes when the service stops.
func TestGPUProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	bin := buildBinary(t)
	_, nsURI, _, _ := startProcess(t, bin, "ns", "--port", "0", "--memory")
	nsu, err := gopyro.Parse(nsURI)
	if err != nil {
		t.Fatal(err)
	}
	nsAddr := fmt.Sprintf("%s:%d", nsu.Host, nsu.Port)
	srv, first, exited, stderr := startProcess(t, bin, "gpu", "--ns", nsAddr, "--port", "0", "--backend", "cpu")
	if !strings.HasPrefix(first, "PYRO:gopyro.gpu@127.0.0.1:") {
		t.Fatalf("first line %q; stderr: %s", first, stderr.String())
	}
	name := "PYRONAME:gopyro.gpu@" + nsAddr

	// The cookbook client, as its own process, through the name server.
	client := testutil.Build(t, "github.com/gopyro/gopyro/examples/gpu/client")
	defer testutil.Cleanup()
	out := testutil.Run(t, nil, client, name)
	for _, want := range []string{"backend cpu: CPU", "\n21253400.0\n", "Maximum error 0.000000", "(< 1e-5: true)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the client printed no %q:\n%s", want, out)
		}
	}

	// A client process killed with SIGKILL: its arrays are freed.
	ctx := t.Context()
	c, err := gpu.Dial(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command(exe)
	holder.Env = append(os.Environ(), gpuHolderEnv+"="+name)
	hout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() { held <- holder.Wait() }()
	t.Cleanup(func() { _ = holder.Process.Kill(); <-held })
	if line, err := bufio.NewReader(hout).ReadString('\n'); err != nil || line != "holding\n" {
		t.Fatalf("the holder said %q, %v", line, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Arrays != 2 || info.Used != 1000*4+64*64*8 {
		t.Errorf("with the holder alive: %d arrays, %d bytes", info.Arrays, info.Used)
	}
	if err := holder.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the killed client's arrays freed", func() bool {
		in, err := c.Info(ctx)
		return err == nil && in.Arrays == 0 && in.Used == 0
	})

	// Interrupted, the service stops cleanly and takes its name away.
	if err := srv.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("gopyro gpu exited with %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gopyro gpu did not stop on an interrupt")
	}
	ns, err := nameserver.NewClient(nsURI)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if _, err := ns.Lookup(ctx, gpu.DefaultName); !errors.Is(err, gopyro.ErrNotFound) {
		t.Errorf("after the service stopped, lookup gave %v", err)
	}
}

// Bad flags are usage errors (exit 2); a CUDA backend that is not there
// is a runtime error (exit 1) that says why.
func TestGPUFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"gpu", "--backend", "tpu"}, 2, `--backend "tpu": want auto, cpu or cuda`},
		{[]string{"gpu", "--max-memory", "lots"}, 2, `--max-memory "lots"`},
		{[]string{"gpu", "--no-ns", "--backend", "cuda"}, 1, "no CUDA worker (gopyro-cuda"},
		{[]string{"gpu", "--ns", "127.0.0.1:1"}, 1, "registering gopyro.gpu with the name server"},
	} {
		b, err := exec.Command(bin, tc.args...).CombinedOutput()
		ee, ok := errors.AsType[*exec.ExitError](err)
		if !ok || ee.ExitCode() != tc.code || !strings.Contains(string(b), tc.want) {
			t.Errorf("%v: %v, %s; want exit %d and %q", tc.args, err, b, tc.code, tc.want)
		}
	}
}

// gopyro demo gpu: a name server, the service registered in it, and the
// recipes through PYRONAME:gopyro.gpu.
func TestDemoGPU(t *testing.T) {
	out, _, err := run(t, "demo", "gpu")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[ns] name server PYRO:Pyro.NameServer@127.0.0.1:",
		"[server] GPU compute service PYRO:gopyro.gpu@127.0.0.1:",
		"registered as gopyro.gpu",
		"[client] backend cpu: CPU",
		"[client] --- recipe 6",
		"[client] 21253400.0\n",
		"[client] Maximum error 0.000000\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo gpu printed no %q:\n%s", want, out)
		}
	}
}
