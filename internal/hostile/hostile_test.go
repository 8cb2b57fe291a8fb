package hostile

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smallnest/rpcx/protocol"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/internal/wire"
	"github.com/gopyro/gopyro/proxy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

// Limits every attack is held to (issue 11).
const (
	maxRSS     = 256 << 20       // the daemon's resident memory
	maxLatency = 2 * time.Second // a good call, while under attack
	// The daemon runs with short timeouts so that what attackers hold
	// comes back within the test; the defaults are longer (daemon.Config).
	timeout = 2 * time.Second
)

// target is a real `gopyro echo` process and what is watched of it.
type target struct {
	pid  int
	addr string
	uri  gopyro.URI
	proc *testutil.Process

	maxRSS atomic.Int64
}

func startTarget(t *testing.T, extra ...string) *target {
	t.Helper()
	bin := testutil.Build(t, "github.com/gopyro/gopyro/cmd/gopyro")
	d := timeout.String()
	// The idle timeout stays long: the good client, in this (race
	// detector) process, may itself be paused for seconds while attackers
	// build their frames, and idle connections are closed by the
	// handshake timeout anyway, having sent no first request.
	args := append([]string{"echo", "--port", "0", "--handshake-timeout", d, "--frame-timeout", d,
		"--idle-timeout", "1m", "--write-timeout", d}, extra...)
	p := testutil.Start(t, nil, bin, args...)
	line := p.Stdout.Wait(t, testutil.Prefix("PYRO:"))
	u, err := gopyro.Parse(strings.Fields(line)[0])
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{pid: p.Cmd.Process.Pid, addr: u.Address(), uri: u, proc: p}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if r := tg.rss(); r > tg.maxRSS.Load() {
				tg.maxRSS.Store(r)
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait() })
	return tg
}

// rss returns the process's resident memory in bytes.
func (tg *target) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tg.pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// fds returns the process's open file descriptors.
func (tg *target) fds() int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", tg.pid))
	return len(es)
}

// goodClient calls Echo every 200 ms until stop, and reports its worst
// latency and its failures.
type goodClient struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	worst    time.Duration
	failures []string
	calls    int
	gap      time.Duration // the longest pause between two calls' starts
}

func startGood(t *testing.T, u gopyro.URI) *goodClient {
	p, err := proxy.NewURI(u)
	if err != nil {
		t.Fatal(err)
	}
	g := &goodClient{stop: make(chan struct{})}
	// Connected and served before the attack begins.
	if _, err := proxy.Call[string](t.Context(), p, "Echo", "ping"); err != nil {
		t.Fatal(err)
	}
	g.wg.Go(func() {
		defer p.Close()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		var last time.Time
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			start := time.Now()
			if !last.IsZero() {
				g.gap = max(g.gap, start.Sub(last))
			}
			last = start
			v, err := proxy.Call[string](ctx, p, "Echo", "ping")
			el := time.Since(start)
			cancel()
			g.mu.Lock()
			g.calls++
			g.worst = max(g.worst, el)
			if err != nil || v != "ping" {
				g.failures = append(g.failures, fmt.Sprintf("at %s: %v %q", start.Format("15:04:05.000"), err, v))
			}
			g.mu.Unlock()
			select {
			case <-tick.C:
			case <-g.stop:
				return
			}
		}
	})
	return g
}

func (g *goodClient) end(t *testing.T) {
	t.Helper()
	close(g.stop)
	g.wg.Wait()
	if len(g.failures) > 0 {
		t.Errorf("%d of %d good calls failed: %v", len(g.failures), g.calls, g.failures[0])
	}
	if g.worst > maxLatency {
		t.Errorf("a good call took %v (limit %v)", g.worst, maxLatency)
	}
}

// frame encodes a gopyro request.
func frame(seq uint64, meta map[string]string, payload []byte, change func(*protocol.Message)) []byte {
	m := protocol.NewMessage()
	m.SetSeq(seq)
	m.ServicePath, m.ServiceMethod = wire.ServicePath, wire.ServiceMethod
	m.Metadata = meta
	m.Payload = payload
	if change != nil {
		change(m)
	}
	return m.Encode()
}

var echoMeta = map[string]string{wire.MetaObject: "test.echoserver", wire.MetaMethod: "Echo"}

// attack is one hostile client behaviour. prep builds what it sends (in
// this process, before the good client starts: building 64 MiB frames
// under the race detector pauses this process for seconds) and returns
// the launch, which dials and sends and leaves its connections to the
// caller to close.
type attack struct {
	name string
	prep func(t *testing.T, addr string, track func(net.Conn)) (launch func())
}

// writeAll writes b on c from a goroutine: the daemon may stop reading.
func writeAll(c net.Conn, b []byte) { go func() { _, _ = c.Write(b) }() }

func dial(t *testing.T, addr string, track func(net.Conn)) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	track(c)
	return c
}

var attacks = []attack{
	{"stalled 64 MiB bodies", func(t *testing.T, addr string, track func(net.Conn)) func() {
		f := frame(1, echoMeta, make([]byte, 63<<20), nil)
		return func() {
			for range 8 {
				writeAll(dial(t, addr, track), f[:40<<20]) // 40 of 64 MiB, then nothing
			}
		}
	}},
	{"1 MiB calls, replies never read", func(t *testing.T, addr string, track func(net.Conn)) func() {
		arg, _ := wire.EncodeArray(make([]byte, 1<<20))
		var b bytes.Buffer
		for i := range 100 {
			b.Write(frame(uint64(i+1), echoMeta, arg, nil))
		}
		return func() {
			writeAll(dial(t, addr, track), b.Bytes())
		}
	}},
	{"metadata of 6 M keys", func(t *testing.T, addr string, track func(net.Conn)) func() {
		// Header and prefix claim 60 MiB of metadata; the pairs follow.
		body := make([]byte, 0, 64<<10)
		put := func(s string) { body = binary.BigEndian.AppendUint32(body, uint32(len(s))); body = append(body, s...) }
		put(wire.ServicePath)
		put(wire.ServiceMethod)
		body = binary.BigEndian.AppendUint32(body, 60<<20)
		for i := 0; len(body) < 60<<10; i++ {
			put(strconv.Itoa(i % 1000))
			put("")
		}
		h := make([]byte, 16)
		h[0] = 0x08
		binary.BigEndian.PutUint64(h[4:], 1)
		binary.BigEndian.PutUint32(h[12:], 60<<20+100)
		return func() {
			for range 4 {
				writeAll(dial(t, addr, track), append(h, body...))
			}
		}
	}},
	{"8 MiB of empty arrays", func(t *testing.T, addr string, track func(net.Conn)) func() {
		const n = 8<<20 - 8
		p := []byte{0x91, 0xdd}
		p = binary.BigEndian.AppendUint32(p, n)
		p = append(p, bytes.Repeat([]byte{0x90}, n)...)
		f := frame(1, echoMeta, p, nil)
		return func() {
			for range 8 {
				writeAll(dial(t, addr, track), f)
			}
		}
	}},
	{"a batch of 1,000,000 calls", func(t *testing.T, addr string, track func(net.Conn)) func() {
		calls := make([]wire.BatchCall, 1_000_000)
		for i := range calls {
			calls[i] = wire.BatchCall{Method: "Echo", Args: []byte{0x91, 0x01}}
		}
		b, _ := wire.EncodeBatch(calls)
		meta := map[string]string{wire.MetaObject: "test.echoserver", wire.MetaMethod: wire.BatchMethod, wire.MetaBatch: wire.BatchAll}
		return func() {
			writeAll(dial(t, addr, track), frame(1, meta, b, nil))
		}
	}},
	{"16 MiB heartbeats", func(t *testing.T, addr string, track func(net.Conn)) func() {
		f := frame(1, nil, make([]byte, 16<<20), func(m *protocol.Message) { m.SetHeartbeat(true) })
		return func() {
			for range 8 {
				writeAll(dial(t, addr, track), f)
			}
		}
	}},
	{"oneway flood", func(t *testing.T, addr string, track func(net.Conn)) func() {
		meta := map[string]string{wire.MetaObject: "test.echoserver", wire.MetaMethod: "Echo", wire.MetaOneway: "1"}
		arg, _ := wire.EncodeArray("x")
		var b bytes.Buffer
		for i := range 100_000 {
			b.Write(frame(uint64(i+1), meta, arg, func(m *protocol.Message) { m.SetOneway(true) }))
		}
		return func() {
			var wg sync.WaitGroup
			for range 4 {
				c := dial(t, addr, track)
				wg.Go(func() { _, _ = c.Write(b.Bytes()) })
			}
			wg.Wait()
		}
	}},
	{"one connection takes every slot", func(t *testing.T, addr string, track func(net.Conn)) func() {
		meta := map[string]string{wire.MetaObject: "test.echoserver", wire.MetaMethod: "Slow"}
		arg, _ := wire.EncodeArray(30.0)
		var b bytes.Buffer
		for i := range 1100 {
			b.Write(frame(uint64(i+1), meta, arg, nil))
		}
		return func() {
			writeAll(dial(t, addr, track), b.Bytes())
		}
	}},
	{"10,000 calls, closed unread", func(t *testing.T, addr string, track func(net.Conn)) func() {
		arg, _ := wire.EncodeArray("x")
		var b bytes.Buffer
		for i := range 10_000 {
			b.Write(frame(uint64(i+1), echoMeta, arg, nil))
		}
		return func() {
			for range 10 {
				c := dial(t, addr, track)
				_, _ = c.Write(b.Bytes())
				_ = c.Close()
			}
		}
	}},
	{"slowloris", func(t *testing.T, addr string, track func(net.Conn)) func() {
		f := frame(1, echoMeta, []byte{0x91, 0x01}, nil)
		return func() {
			for range 20 {
				c := dial(t, addr, track)
				go func() {
					for _, x := range f {
						if _, err := c.Write([]byte{x}); err != nil {
							return
						}
						time.Sleep(300 * time.Millisecond)
					}
				}()
			}
		}
	}},
	{"2,000 idle connections", func(t *testing.T, addr string, track func(net.Conn)) func() {
		return func() {
			for i := range 2000 {
				c, err := net.Dial("tcp", addr)
				if err != nil { // a low descriptor limit on this machine
					t.Logf("idle connections: %d opened, then %v", i, err)
					return
				}
				track(c)
			}
		}
	}},
}

// TestHostile runs each attack against a real daemon process while a good
// client calls it every 200 ms: the good calls must succeed within 2 s,
// the daemon's RSS stay under 256 MiB, and its file descriptors come back
// once the attack ends.
func TestHostile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs attacks on a daemon process")
	}
	tg := startTarget(t)
	for _, a := range attacks {
		t.Run(strings.ReplaceAll(a.name, " ", "_"), func(t *testing.T) {
			baseFDs := tg.fds()
			var mu sync.Mutex
			var conns []net.Conn
			track := func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
			launch := a.prep(t, tg.addr, track)
			runtime.GC()
			good := startGood(t, tg.uri)
			launch()
			// Let it bite for a while, as long as the daemon's timeouts.
			time.Sleep(timeout + time.Second)
			good.end(t)
			mu.Lock()
			for _, c := range conns {
				_ = c.Close()
			}
			mu.Unlock()
			testutil.WaitFor(t, 30*time.Second, "the daemon's file descriptors to come back", func() bool {
				return tg.fds() <= baseFDs+2
			})
			if m := tg.maxRSS.Load(); m > maxRSS {
				t.Errorf("the daemon's RSS reached %d MiB (limit %d)", m>>20, maxRSS>>20)
			}
			if t.Failed() {
				t.Logf("daemon stderr: %.2000s", tg.proc.Stderr.String())
			}
			t.Logf("max RSS so far %d MiB; fds %d (baseline %d); worst good call %v; longest pause of the good client %v",
				tg.maxRSS.Load()>>20, tg.fds(), baseFDs, good.worst, good.gap)
		})
	}
}
