package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/gopyro/gopyro/proxy"
)

// RSS is a daemon process's memory, in bytes.
type RSS struct {
	Idle    int64 `json:"idle"`    // after start, before any call
	After   int64 `json:"after"`   // resident after the payload echoes
	Peak    int64 `json:"peak"`    // high-water mark (VmHWM)
	Payload int64 `json:"payload"` // bytes per echo
	Echoes  int   `json:"echoes"`
}

// DaemonRSS starts "bin echo --port 0" (a gopyro daemon in a process of its
// own), reads its resident memory, echoes payload bytes through it echoes
// times, and reads it again. Linux only (/proc).
func DaemonRSS(ctx context.Context, bin string, payload, echoes int) (RSS, error) {
	r := RSS{Payload: int64(payload), Echoes: echoes}
	cmd := exec.CommandContext(ctx, bin, "echo", "--port", "0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		return r, errors.New("the echo daemon printed no URI")
	}
	uri := sc.Text()
	go func() {
		for sc.Scan() {
		}
	}()
	p, err := proxy.New(uri)
	if err != nil {
		return r, err
	}
	defer p.Close()
	if err := p.Ping(ctx); err != nil {
		return r, err
	}
	if r.Idle, _, err = procMem(cmd.Process.Pid); err != nil {
		return r, err
	}
	msg := make([]byte, payload)
	for range echoes {
		back, err := proxy.Call[[]byte](ctx, p, "Echo", msg)
		if err != nil {
			return r, err
		}
		if len(back) != payload {
			return r, fmt.Errorf("echo returned %d bytes", len(back))
		}
	}
	r.After, r.Peak, err = procMem(cmd.Process.Pid)
	return r, err
}

// procMem reads VmRSS and VmHWM of pid.
func procMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("reading process memory (Linux only): %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm, nil
}
