package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/gpu"
	"github.com/gopyro/gopyro/gpu/cpu"
)

// cudaWorker is the name of the CUDA backend's worker program.
const cudaWorker = "gopyro-cuda"

func gpuCmd(e *env) *cobra.Command {
	var grace time.Duration
	var backend, name, nsAddr, host, token, maxMem, sessMem, maxArray string
	var port, maxArrays int
	var noNS bool
	var daemonOpts func() []daemon.Option
	cmd := &cobra.Command{
		Use:   "gpu",
		Short: "Serve the GPU compute service: remote arrays, GEMM, element-wise expressions, reductions, kernels",
		Long: `Serve the GPU compute service until interrupted. Clients (package gpu, or
examples/gpu) keep arrays on this machine's device between operations and
run matrix products, element-wise expressions such as "a*x + b*y",
reductions and custom kernels on them.

The service registers itself with the name server as --name (default
gopyro.gpu), so clients dial PYRONAME:gopyro.gpu; --no-ns skips that. It
prints its URI on the first line of stdout, then its backend and devices.

Backends: cpu is pure Go (gonum's GEMM, every core) and always works; cuda
runs on an NVIDIA GPU through the gopyro-cuda worker; auto (the default)
takes cuda when it works and says why it took cpu otherwise.

Each client connection is a session: its arrays are freed when it closes
or goes away. --max-memory bounds all arrays together, --session-memory
one session's, --max-array one array; past them a call fails with an
out-of-memory error and the service goes on.

Examples:
  gopyro ns &                     # a name server on 127.0.0.1:9090
  gopyro gpu                      # serve, registered as gopyro.gpu
  go run ./examples/gpu/client    # the cookbook recipes, via PYRONAME:gopyro.gpu
  gopyro gpu --no-ns --port 7000 --backend cpu --max-memory 2GiB`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg gpu.Config
			for _, f := range []struct {
				flag, val string
				dst       *int64
			}{{"--max-memory", maxMem, &cfg.MaxMemory}, {"--session-memory", sessMem, &cfg.SessionMemory}, {"--max-array", maxArray, &cfg.MaxArray}} {
				if f.val == "" {
					continue
				}
				n, err := parseSize(f.val)
				if err != nil {
					return usageError{fmt.Errorf("%s %q: %v", f.flag, f.val, err)}
				}
				*f.dst = n
			}
			cfg.MaxArrays, cfg.Logger = maxArrays, e.log
			b, why, err := chooseBackend(backend)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := gpu.NewService(ctx, b, cfg)
			if err != nil {
				b.Close()
				return err
			}
			defer s.Close()
			opts := daemonOpts()
			if token != "" {
				opts = append(opts, daemon.WithToken(token))
			}
			d, err := daemon.New(append(opts, daemon.WithLogger(e.log))...)
			if err != nil {
				return err
			}
			ln, err := listen(host, port)
			if err != nil {
				return err
			}
			ctx, stop := context.WithCancel(ctx)
			defer stop()
			wait, err := startServing(ctx, d, ln, grace)
			if err != nil {
				return err
			}
			uri, err := s.Register(d)
			if err != nil {
				stop()
				return errors.Join(err, wait())
			}
			if !noNS {
				unregister, err := registerName(ctx, nsAddr, token, name, uri)
				if err != nil {
					stop()
					return errors.Join(fmt.Errorf("%w (or pass --no-ns)", err), wait())
				}
				defer unregister()
			}
			info := s.Info()
			fmt.Fprintln(e.stdout, uri)
			fmt.Fprintf(e.stdout, "backend %s (%s)\n", info.Backend, why)
			for i, dev := range info.Devices {
				fmt.Fprintf(e.stdout, "device %d: %s\n", i, dev)
			}
			fmt.Fprintf(e.stdout, "limits: %s of arrays in all, %s per session, %s per array\n",
				gpu.FormatBytes(info.MaxMemory), gpu.FormatBytes(info.SessionMemory), gpu.FormatBytes(info.MaxArray))
			if !noNS {
				fmt.Fprintf(e.stdout, "registered as %s: clients dial PYRONAME:%s\n", name, name)
			}
			return wait()
		},
	}
	f := cmd.Flags()
	f.StringVar(&backend, "backend", "auto", "auto, cpu or cuda")
	f.StringVar(&name, "name", gpu.DefaultName, "name to register with the name server")
	f.StringVar(&nsAddr, "ns", "", "name server HOST:PORT (default: $GOPYRO_NS_HOST/$GOPYRO_NS_PORT, then 127.0.0.1:9090)")
	f.BoolVar(&noNS, "no-ns", false, "do not register with a name server")
	f.StringVar(&host, "host", "127.0.0.1", "address to bind, or ./u:PATH for a unix socket")
	f.IntVarP(&port, "port", "p", 0, "port to bind (0: any free port)")
	tokenFlag(f, &token, "shared secret clients (and the name server) must present")
	f.StringVar(&maxMem, "max-memory", "", "bound on all arrays together, e.g. 8GiB (default: half the device's memory)")
	f.StringVar(&sessMem, "session-memory", "", "bound on one session's arrays (default: --max-memory)")
	f.StringVar(&maxArray, "max-array", "", "bound on one array (default: --session-memory)")
	f.IntVar(&maxArrays, "max-arrays", gpu.DefaultMaxArrays, "most arrays one session holds")
	graceFlag(f, &grace)
	daemonOpts = daemonFlags(f)
	return cmd
}

// chooseBackend makes the backend kind names and says why.
func chooseBackend(kind string) (gpu.Backend, string, error) {
	switch kind {
	case "cpu":
		return cpu.New(), "asked for with --backend cpu", nil
	case "auto", "cuda":
		worker, err := findCUDAWorker()
		if err != nil {
			if kind == "cuda" {
				return nil, "", fmt.Errorf("--backend cuda: %v", err)
			}
			return cpu.New(), "auto: " + err.Error(), nil
		}
		// The worker exists but this gopyro does not drive it yet.
		why := fmt.Sprintf("found %s, but this build of gopyro cannot run the CUDA backend yet", worker)
		if kind == "cuda" {
			return nil, "", fmt.Errorf("--backend cuda: %s", why)
		}
		return cpu.New(), "auto: " + why, nil
	}
	return nil, "", usageError{fmt.Errorf("--backend %q: want auto, cpu or cuda", kind)}
}

// findCUDAWorker looks for the CUDA worker next to this program, then on
// the PATH.
func findCUDAWorker() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), cudaWorker)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(cudaWorker); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no CUDA worker (%s, built with -tags cuda) next to gopyro or on the PATH", cudaWorker)
}
