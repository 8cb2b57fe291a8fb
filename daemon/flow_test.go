package daemon_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smallnest/rpcx/protocol"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/internal/wire"
)

// Tally counts its calls; Hold blocks until the gate opens.
type Tally struct {
	n    atomic.Int64
	open chan struct{}
}

func (c *Tally) Hold(ctx context.Context) {
	select {
	case <-c.open:
	case <-ctx.Done():
	}
	c.n.Add(1)
}

func (c *Tally) Quick() string { return "quick" }

func (c *Tally) Any(v any) int { return 1 }

// serveTally serves a Tally (whose Hold waits for its gate) as "c".
func serveTally(t *testing.T, opts ...daemon.Option) (*Tally, *daemon.Daemon, gopyro.URI) {
	t.Helper()
	c := &Tally{open: make(chan struct{})}
	d := testutil.Serve(t, opts...)
	u, err := d.Register(c, daemon.WithID("c"))
	if err != nil {
		t.Fatal(err)
	}
	return c, d, u
}

// rawClient dials u with gopyro's frame client, closed when the test ends.
func rawClient(t *testing.T, u gopyro.URI, maxFrame int64) *wire.Client {
	t.Helper()
	cl, err := wire.DialClient(t.Context(), "tcp", u.Address(), wire.DialOptions{MaxFrame: maxFrame})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Oneway calls over the in-flight limit wait for a slot instead of being
// dropped (issue 11 item 8): every oneway call written is run.
func TestOnewayNotDropped(t *testing.T) {
	for _, drop := range []bool{false, true} {
		c, d, u := serveTally(t, daemon.WithMaxInFlight(4), daemon.WithDropOneway(drop))
		const conns, each = 3, 100
		var wg sync.WaitGroup
		for range conns {
			p := newProxy(t, u)
			wg.Go(func() {
				for range each {
					if err := p.Oneway(t.Context(), "Hold"); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if drop {
			testutil.WaitFor(t, 10*time.Second, "oneway calls dropped", func() bool { return d.Stats().OnewayDropped > 0 })
			close(c.open)
			testutil.WaitFor(t, 10*time.Second, "the calls not dropped to run", func() bool {
				return c.n.Load()+int64(d.Stats().OnewayDropped) == conns*each
			})
			continue
		}
		close(c.open)
		testutil.WaitFor(t, 20*time.Second, "every oneway call to run", func() bool { return c.n.Load() == conns*each })
		if s := d.Stats(); s.OnewayDropped != 0 {
			t.Fatalf("%d oneway calls dropped", s.OnewayDropped)
		}
	}
}

// One connection cannot take every in-flight slot (issue 11 item 14): the
// daemon stops reading from a connection with MaxConnInFlight requests in
// hand, and other clients are served.
func TestConnFairShare(t *testing.T) {
	c, d, u := serveTally(t, daemon.WithMaxInFlight(16), daemon.WithMaxConnInFlight(4))
	greedy := rawClient(t, u, 1<<20)
	const n = 100
	var wg sync.WaitGroup
	release := sync.OnceFunc(func() { close(c.open) })
	defer func() { release(); wg.Wait() }()
	for range n {
		wg.Go(func() {
			_, err := greedy.Send(t.Context(), wire.Call{Meta: map[string]string{wire.MetaObject: "c", wire.MetaMethod: "Hold"},
				Payload: [][]byte{{0x90}}})
			if err != nil {
				t.Error(err)
			}
		})
	}
	testutil.WaitFor(t, 10*time.Second, "the greedy connection's calls to start", func() bool { return d.Stats().InFlight >= 4 })
	p := newProxy(t, u)
	for range 20 {
		if _, err := p.Call(t.Context(), "Quick"); err != nil {
			t.Fatalf("a good client beside a greedy one: %v", err)
		}
	}
	if got := d.Stats().InFlight; got > 4 {
		t.Fatalf("%d calls of one connection in flight, its share is 4", got)
	}
	release()
	wg.Wait()
	if c.n.Load() != n {
		t.Fatalf("%d of %d calls ran", c.n.Load(), n)
	}
}

// rawFrame encodes a gopyro request of a payload of n bytes.
func rawFrame(seq uint64, meta map[string]string, n int) []byte {
	m := protocol.NewMessage()
	m.SetSeq(seq)
	m.SetSerializeType(protocol.SerializeNone)
	m.ServicePath, m.ServiceMethod = wire.ServicePath, wire.ServiceMethod
	m.Metadata = meta
	m.Payload = make([]byte, n)
	return m.Encode()
}

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// Requests announced large and sent in part hold no more than the memory
// budget, and small calls go on meanwhile (issue 11 item 10).
func TestBudgetBoundsStalledBodies(t *testing.T) {
	const budget = 8 << 20
	_, d, u := serveTally(t, daemon.WithMaxBytesInFlight(budget), daemon.WithMaxMessageSize(6<<20))
	p := newProxy(t, u)
	if _, err := p.Call(t.Context(), "Quick"); err != nil {
		t.Fatal(err)
	}
	before := heapInUse()
	meta := map[string]string{wire.MetaObject: "c", wire.MetaMethod: "Quick"}
	frame := rawFrame(1, meta, 5<<20)
	const attackers = 8
	for range attackers {
		conn, err := net.Dial("tcp", u.Address())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go func() { _, _ = conn.Write(frame[:4<<20]) }() // 4 of 5 MiB, then nothing
	}
	testutil.WaitFor(t, 10*time.Second, "the attackers' bodies to be admitted", func() bool { return d.Stats().BytesInFlight > 0 })
	start := time.Now()
	for range 5 {
		if _, err := p.Call(t.Context(), "Quick"); err != nil {
			t.Fatalf("a small call beside stalled large requests: %v", err)
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("small calls took %v beside stalled large requests", el)
	}
	if got := d.Stats().BytesInFlight; got > budget {
		t.Fatalf("%d bytes held, the budget is %d", got, budget)
	}
	// Without the budget, eight 5 MiB buffers were allocated and 32 MiB
	// held; with it, one or two.
	if grown := heapInUse() - before; grown > 16<<20 {
		t.Fatalf("the live heap grew by %d MiB under %d stalled 5 MiB requests", grown>>20, attackers)
	}
}

// A payload that would decode to far more than its size is refused before
// it is decoded (issue 11 item 11), as is a batch of too many calls.
func TestDecodeAmplification(t *testing.T) {
	_, _, u := serveTally(t, daemon.WithMaxBytesInFlight(32<<20))
	cl := rawClient(t, u, 8<<20)
	// [ [ [], [], ... 1M empty arrays ] ]: 1 MiB that decodes to ~64 MiB.
	const n = 1 << 20
	var b bytes.Buffer
	b.Write([]byte{0x91, 0xdd})
	_ = binary.Write(&b, binary.BigEndian, uint32(n))
	b.Write(bytes.Repeat([]byte{0x90}, n))
	meta, reply := sendRawTo(t, cl, map[string]string{wire.MetaObject: "c", wire.MetaMethod: "Any"}, b.Bytes())
	if meta[wire.MetaError] != "1" {
		t.Fatal("1 MiB of empty arrays was decoded")
	}
	if ge := wire.DecodeError(reply); ge.Code != gopyro.CodeProtocol || !strings.Contains(ge.Message, "would decode") {
		t.Fatalf("got %v", ge)
	}
	// A small one still decodes.
	meta, reply = sendRawTo(t, cl, map[string]string{wire.MetaObject: "c", wire.MetaMethod: "Any"}, []byte{0x91, 0x93, 0x90, 0x90, 0x90})
	if meta[wire.MetaError] == "1" {
		t.Fatalf("a small argument: %v", wire.DecodeError(reply))
	}
	calls := make([]wire.BatchCall, wire.MaxBatchCalls+1)
	for i := range calls {
		calls[i] = wire.BatchCall{Method: "Quick", Args: []byte{0x90}}
	}
	batch, _ := wire.EncodeBatch(calls)
	meta, reply = sendRawTo(t, cl, map[string]string{wire.MetaObject: "c", wire.MetaMethod: wire.BatchMethod, wire.MetaBatch: wire.BatchAll}, batch)
	if ge := wire.DecodeError(reply); meta[wire.MetaError] != "1" || ge.Code != gopyro.CodeProtocol {
		t.Fatalf("a batch of %d calls: %v", len(calls), ge)
	}
}

func sendRawTo(t *testing.T, cl *wire.Client, meta map[string]string, payload []byte) (map[string]string, []byte) {
	t.Helper()
	rep, err := cl.Send(t.Context(), wire.Call{Meta: meta, Payload: [][]byte{payload}})
	if err != nil {
		t.Fatal(err)
	}
	return rep.Meta, rep.Payload
}

// A oneway call with a wrong token closes its connection, as every other
// call with one does (issue 11 item 17).
func TestOnewayWrongTokenCloses(t *testing.T) {
	_, d, u := serveTally(t, daemon.WithToken("secret"))
	cl := rawClient(t, u, 1<<20)
	meta := map[string]string{wire.MetaObject: "c", wire.MetaMethod: "Quick", wire.MetaAuth: "wrong", wire.MetaOneway: "1"}
	if _, err := cl.Send(t.Context(), wire.Call{Meta: meta, Payload: [][]byte{{0x90}}, Oneway: true}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the connection to close", func() bool { return d.Stats().Conns == 0 })
}

// A request marked oneway in its metadata and not in its header is not a
// gopyro client's: it gets a protocol error instead of no answer at all.
func TestOnewayMarkMismatch(t *testing.T) {
	_, _, u := serveTally(t)
	cl := rawClient(t, u, 1<<20)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rep, err := cl.Send(ctx, wire.Call{Meta: map[string]string{wire.MetaObject: "c", wire.MetaMethod: "Quick", wire.MetaOneway: "1"}, Payload: [][]byte{{0x90}}})
	if err != nil {
		t.Fatal(err)
	}
	if ge := wire.DecodeError(rep.Payload); rep.Meta[wire.MetaError] != "1" || ge.Code != gopyro.CodeProtocol {
		t.Fatalf("got %+v", ge)
	}
}
