package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gopyro/gopyro/examples/interop"
	"github.com/gopyro/gopyro/internal/bench"
)

func benchCmd(e *env) *cobra.Command {
	var (
		duration time.Duration
		runs     int
		cases    []string
		asJSON   bool
		noRSS    bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure gopyro against raw TCP, raw rpcx and net/rpc on this machine",
		Long: `Measure gopyro and its baselines doing the same work, in one run, on
127.0.0.1: a raw TCP length-prefixed echo (the floor), raw rpcx (SendRaw to a
raw handler) and the standard library's net/rpc. Each line gives gopyro's
figure, each baseline's, and gopyro's ratio to it (above 1: gopyro is
faster). Systems run interleaved, each case --runs times; the median is
reported. Shared machines are noisy: compare ratios, not absolute figures.

Allocations per op count the client and the server together (they share
this process). The daemon's resident memory is measured on a separate
"gopyro echo" process, idle and after echoing 16 MiB payloads.

Cases: ` + strings.Join(bench.CaseNames(), ", ") + `

The soak case (--case soak, alone) is different: gopyro only, for the whole
--duration (give it a minute), with mixed traffic from 8 goroutines (calls,
oneway calls, streams, batches, connect-call-close, 64 KiB calls). It reports
calls/s, p50 and p99 latency, errors, and this process's RSS, goroutines and
file descriptors before and after: once every client has closed, goroutines
and descriptors must be back where they started.

The classic case (--case classic, alone) measures classic mode against a
plain gopyro call measured in between: execute and eval round trips,
connect + first execute + close, redirected stdout lines/s, and this
process's RSS with 16 idle sessions (workers apart).

The gpu case (--case gpu, alone) measures the GPU compute service on the CPU
backend, each against a baseline in the same run: 1024×1024 GEMM against the
same gonum call made locally; a*x + b*y over 16M float32 against a copy
loop's bandwidth; 256 MiB uploads and downloads against the 16 MiB echo; a
16-element Scale against a small gopyro call.

The pyro case (--case pyro, alone) measures a Python Pyro4 client calling a
gopyro daemon against the same client calling a Python Pyro4 daemon, per
serializer (serpent, marshal, json, msgpack), with a short str and with a
list of 1000 ints: calls/s, and the ratio (above 1: the gopyro daemon is
faster). It needs a python3 with Pyro4 (or GOPYRO_PYTHON).`,
		Example: "  gopyro bench --duration 2s --runs 5\n  gopyro bench --case small,echo-16MiB --json\n  gopyro bench --case soak --duration 60s",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if duration <= 0 || runs < 1 {
				return usageError{fmt.Errorf("--duration must be positive and --runs at least 1")}
			}
			ctx := cmd.Context()
			if slices.Contains(cases, "classic") {
				if len(cases) > 1 {
					return usageError{fmt.Errorf("the classic case runs alone")}
				}
				return runClassicBench(e, cmd, duration, asJSON)
			}
			if slices.Contains(cases, "gpu") {
				if len(cases) > 1 {
					return usageError{fmt.Errorf("the gpu case runs alone")}
				}
				rs, err := bench.GPU(cmd.Context(), duration)
				if err != nil {
					return err
				}
				return printRatios(e, rs, asJSON)
			}
			if slices.Contains(cases, "pyro") {
				if len(cases) > 1 {
					return usageError{fmt.Errorf("the pyro case runs alone")}
				}
				py, err := interop.FindPython(ctx)
				if err != nil {
					return err
				}
				rs, err := bench.Pyro(ctx, py, duration, runs)
				if err != nil {
					return err
				}
				return printRatios(e, rs, asJSON)
			}
			if slices.Contains(cases, "soak") {
				if len(cases) > 1 {
					return usageError{fmt.Errorf("the soak case runs alone")}
				}
				return runSoak(e, cmd, duration, asJSON)
			}
			var results []bench.Result
			row := func(cells ...string) {
				fmt.Fprintf(e.stdout, "%-14s %-8s", cells[0], cells[1])
				for _, c := range cells[2:] {
					fmt.Fprintf(e.stdout, " %-16s", c)
				}
				fmt.Fprintln(e.stdout)
			}
			if !asJSON {
				row(append(append([]string{"case", "unit"}, bench.SystemOrder...), "allocs/op gopyro, rpcx")...)
			}
			err := bench.Run(ctx, bench.Options{Duration: duration, Runs: runs, Cases: cases}, func(r bench.Result) error {
				results = append(results, r)
				if asJSON {
					return nil
				}
				cells := []string{r.Case, r.Unit}
				for _, name := range bench.SystemOrder {
					m, ok := r.Systems[name]
					switch {
					case !ok:
						cells = append(cells, "-")
					case name == "gopyro":
						cells = append(cells, human(m.Value))
					default:
						cells = append(cells, fmt.Sprintf("%s (%.2fx)", human(m.Value), r.Ratios[name]))
					}
				}
				row(append(cells, fmt.Sprintf("%.0f, %.0f", r.Systems["gopyro"].AllocsPerOp, r.Systems["rpcx"].AllocsPerOp))...)
				for _, name := range bench.SystemOrder {
					if m := r.Systems[name]; m.Lost > 0 {
						fmt.Fprintf(e.stdout, "    %s never ran %.0f%% of the oneway calls sent (a daemon drops those over its in-flight limit)\n", name, 100*m.Lost)
					}
				}
				return nil
			})
			if err != nil {
				if strings.HasPrefix(err.Error(), "unknown case") {
					return usageError{err}
				}
				return err
			}
			var rss *bench.RSS
			if !noRSS {
				bin, err := os.Executable()
				if err == nil {
					r, err := bench.DaemonRSS(ctx, bin, 16<<20, 5)
					if err != nil {
						fmt.Fprintln(e.stderr, "daemon RSS not measured:", err)
					} else {
						rss = &r
					}
				}
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Duration string         `json:"duration"`
					Runs     int            `json:"runs"`
					Results  []bench.Result `json:"results"`
					RSS      *bench.RSS     `json:"daemon_rss,omitempty"`
				}{duration.String(), runs, results, rss})
			}
			if rss != nil {
				fmt.Fprintf(e.stdout, "\ndaemon RSS: idle %.1f MB; after %d echoes of %d MiB: %.1f MB, peak %.1f MB (%.1fx the payload)\n",
					mb(rss.Idle), rss.Echoes, rss.Payload>>20, mb(rss.After), mb(rss.Peak), float64(rss.Peak)/float64(rss.Payload))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&duration, "duration", time.Second, "time per case, system and run")
	cmd.Flags().IntVar(&runs, "runs", 1, "runs per case; the median is reported")
	cmd.Flags().StringSliceVar(&cases, "case", nil, "cases to run, comma separated (default: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&noRSS, "no-rss", false, "skip the daemon memory measurement")
	return cmd
}

func mb(b int64) float64 { return float64(b) / 1e6 }

// runSoak runs and reports the soak case.
func runSoak(e *env, cmd *cobra.Command, d time.Duration, asJSON bool) error {
	r, err := bench.Soak(cmd.Context(), d, 8)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(e.stdout, "soak: %v, %d ops (%s/s), p50 %.2f ms, p99 %.2f ms, %d errors\n",
		d, r.Ops, human(r.OpsPerSec), r.P50ms, r.P99ms, r.Errors)
	kinds := make([]string, 0, len(r.ByKind))
	for k, n := range r.ByKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(kinds)
	fmt.Fprintf(e.stdout, "  mix: %s\n", strings.Join(kinds, ", "))
	fmt.Fprintf(e.stdout, "  start: RSS %.1f MB, %d goroutines, %d fds\n", mb(r.Start.RSS), r.Start.Goroutines, r.Start.FDs)
	fmt.Fprintf(e.stdout, "  end:   RSS %.1f MB, %d goroutines, %d fds\n", mb(r.End.RSS), r.End.Goroutines, r.End.FDs)
	if r.Errors > 0 {
		return fmt.Errorf("soak: %d operations failed; the first: %s", r.Errors, r.FirstError)
	}
	if r.End.Goroutines > r.Start.Goroutines || r.End.FDs > r.Start.FDs {
		return fmt.Errorf("soak: goroutines or descriptors did not come back (%d → %d goroutines, %d → %d fds)",
			r.Start.Goroutines, r.End.Goroutines, r.Start.FDs, r.End.FDs)
	}
	return nil
}

// human formats a rate with a k or M suffix.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func runClassicBench(e *env, cmd *cobra.Command, d time.Duration, asJSON bool) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	rs, err := bench.Classic(cmd.Context(), func() *exec.Cmd { return exec.Command(exe, "classic", "worker") }, d)
	if err != nil {
		return err
	}
	return printRatios(e, rs, asJSON)
}

// printRatios prints measurements with their baselines.
func printRatios(e *env, rs []bench.ClassicResult, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(rs)
	}
	for _, r := range rs {
		line := fmt.Sprintf("%-24s %12.1f %-10s", r.Case, r.Rate, r.Unit)
		if r.BaseRate > 0 {
			line += fmt.Sprintf(" %.2fx of a %s (%.1f %s)", r.Rate/r.BaseRate, r.Baseline, r.BaseRate, r.Unit)
		}
		fmt.Fprintln(e.stdout, line)
	}
	return nil
}
