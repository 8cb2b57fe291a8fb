package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Worker is served in the batch and stream tests.
type Worker struct {
	ran      atomic.Int64
	oneways  chan int
	produced atomic.Int64
	stopped  chan struct{} // closed when a stream's producer saw the stop
	stopOnce sync.Once
}

func newWorker() *Worker {
	return &Worker{oneways: make(chan int, 1000), stopped: make(chan struct{})}
}

func (w *Worker) Add(a, b int) int { w.ran.Add(1); return a + b }

func (w *Worker) Fail(msg string) error {
	w.ran.Add(1)
	return gopyro.NewError(gopyro.CodeRemote, "test.Failure", msg)
}

func (w *Worker) Note(i int) { w.oneways <- i }

// Lines yields n lines of 100 bytes, recording what it produced and
// whether it was stopped early.
func (w *Worker) Lines(ctx context.Context, n int) iter.Seq[string] {
	return func(yield func(string) bool) {
		pad := strings.Repeat("x", 90)
		for i := range n {
			w.produced.Add(1)
			if !yield(fmt.Sprintf("%09d %s", i, pad)) {
				w.stopOnce.Do(func() { close(w.stopped) })
				return
			}
		}
	}
}

// Ticks sends n numbers on a channel, stopping when the stream is closed.
func (w *Worker) Ticks(ctx context.Context, n int) <-chan int {
	ch := make(chan int)
	go func() {
		defer close(ch)
		for i := range n {
			select {
			case ch <- i:
			case <-ctx.Done():
				w.stopOnce.Do(func() { close(w.stopped) })
				return
			}
		}
	}()
	return ch
}

func serveWorker(t testing.TB, opts ...daemon.Option) (*Worker, *daemon.Daemon, *proxy.Proxy) {
	t.Helper()
	w := newWorker()
	d, p := serveObject(t, w, opts...)
	return w, d, p
}

func TestBatch(t *testing.T) {
	w, _, p := serveWorker(t)
	ctx := t.Context()
	const n = 1000
	b := p.Batch()
	for i := range n {
		if i%100 == 7 {
			b.Call("Fail", fmt.Sprint("call ", i))
		} else {
			b.Call("Add", i, i)
		}
	}
	res, err := b.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != n {
		t.Fatalf("%d results for %d calls", len(res), n)
	}
	for i, r := range res {
		if i%100 == 7 {
			// The same error a single call gets, on the right call.
			_, single := p.Call(ctx, "Fail", fmt.Sprint("call ", i))
			if r.Err == nil || r.Err.Error() != single.Error() || !strings.Contains(r.Err.Error(), fmt.Sprint("call ", i)) {
				t.Fatalf("call %d: err %v, single call gives %v", i, r.Err, single)
			}
			continue
		}
		var got int
		if err := r.Decode(&got); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		want, err := proxy.Call[int](ctx, p, "Add", i, i)
		if err != nil || got != want {
			t.Fatalf("call %d: batch %d, single %d (%v)", i, got, want, err)
		}
	}

	// An unknown method is that call's error; the others still run.
	b = p.Batch()
	b.Call("Add", 1, 2)
	b.Call("NoSuchMethod")
	b.Call("Add", "x", 2)
	b.Call("Add", 3, 4)
	res, err = b.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sum int
	if err := res[3].Decode(&sum); err != nil || sum != 7 || !errors.Is(res[1].Err, gopyro.ErrNotFound) || !errors.Is(res[2].Err, gopyro.ErrArgument) {
		t.Fatalf("mixed batch: %v %v %v %d", res[1].Err, res[2].Err, res[3].Err, sum)
	}

	// StopOnError: the calls after the failure do not run.
	before := w.ran.Load()
	b = p.Batch()
	b.Call("Add", 1, 1)
	b.Call("Fail", "stop here")
	b.Call("Add", 2, 2)
	b.Call("Add", 3, 3)
	res, err = b.Run(ctx, proxy.StopOnError())
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || !errors.Is(res[1].Err, gopyro.ErrRemote) || !errors.Is(res[2].Err, proxy.ErrSkipped) || !errors.Is(res[3].Err, proxy.ErrSkipped) {
		t.Fatalf("stop on error: %v %v %v %v", res[0].Err, res[1].Err, res[2].Err, res[3].Err)
	}
	if ran := w.ran.Load() - before; ran != 2 {
		t.Fatalf("%d calls ran, want 2", ran)
	}

	// A oneway batch runs, in order, with nobody waiting.
	b = p.Batch()
	for i := range 10 {
		b.Call("Note", i)
	}
	if err := b.Oneway(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if got := <-w.oneways; got != i {
			t.Fatalf("oneway batch call %d ran as %d", i, got)
		}
	}

	// Errors of the batch as a whole.
	if _, err := p.Batch().Run(ctx); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("empty batch: %v", err)
	}
	b = p.Batch()
	b.Call("Add", make(chan int))
	if _, err := b.Run(ctx); !errors.Is(err, gopyro.ErrArgument) {
		t.Fatalf("unencodable argument: %v", err)
	}
}

// heapInUse returns the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestStreamMillionItems(t *testing.T) {
	w, d, p := serveWorker(t)
	const n = 1_000_000
	base := heapInUse()
	var peak uint64
	i := 0
	for line, err := range proxy.Stream[string](t.Context(), p, "Lines", n) {
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%09d ", i); !strings.HasPrefix(line, want) || len(line) != 100 {
			t.Fatalf("item %d = %q", i, line)
		}
		if i%100_000 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		i++
	}
	if i != n || w.produced.Load() != n {
		t.Fatalf("got %d items, server produced %d, want %d", i, w.produced.Load(), n)
	}
	// 100 MB of items went through; both sides (one process here) hold a
	// chunk at a time.
	if grow := int64(peak) - int64(base); grow > 48<<20 {
		t.Fatalf("heap grew by %d MiB while streaming 100 MB", grow>>20)
	}
	if d.OpenStreams() != 0 {
		t.Fatalf("%d streams open after the end", d.OpenStreams())
	}
}

func TestStreamChunksAndEarlyBreak(t *testing.T) {
	w, d, p := serveWorker(t, daemon.WithStreamChunk(100))
	i := 0
	for _, err := range proxy.Stream[string](t.Context(), p, "Lines", 1000) {
		if err != nil {
			t.Fatal(err)
		}
		// Items come 100 per round trip: the server is exactly one chunk
		// ahead of the reader.
		if got, want := w.produced.Load(), int64((i/100+1)*100); got != want {
			t.Fatalf("at item %d the server produced %d, want %d", i, got, want)
		}
		i++
		if i == 250 {
			break
		}
	}
	select {
	case <-w.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's iterator was not stopped after the client broke out")
	}
	if w.produced.Load() != 300 || d.OpenStreams() != 0 {
		t.Fatalf("produced %d, %d streams open", w.produced.Load(), d.OpenStreams())
	}
}

func TestStreamChannel(t *testing.T) {
	w, d, p := serveWorker(t)
	sum := 0
	for v, err := range proxy.Stream[int](t.Context(), p, "Ticks", 10000) {
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	if sum != 10000*9999/2 {
		t.Fatalf("sum = %d", sum)
	}
	for v, err := range proxy.Stream[int](t.Context(), p, "Ticks", 1<<30) {
		if err != nil || v == 5 {
			break
		}
	}
	<-w.stopped // the producer's context was cancelled
	if d.OpenStreams() != 0 {
		t.Fatalf("%d streams open", d.OpenStreams())
	}
}

func TestStreamAbandoned(t *testing.T) {
	w, d, p := serveWorker(t, daemon.WithMaxStreams(2), daemon.WithStreamLinger(50*time.Millisecond), daemon.WithStreamChunk(10))
	ctx := t.Context()
	// Call opens the stream without reading it; decoding the stream as a
	// value says what to use instead.
	res, err := p.Call(ctx, "Lines", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Values(); err == nil || !strings.Contains(err.Error(), "read it with proxy.Stream") {
		t.Fatalf("stream decoded as a value: %v", err)
	}
	if _, err := p.Call(ctx, "Lines", 1000); err != nil {
		t.Fatal(err)
	}
	// Two per connection: a third is refused.
	if _, err := p.Call(ctx, "Lines", 1000); !errors.Is(err, gopyro.ErrBusy) {
		t.Fatalf("third stream: %v", err)
	}
	// The client vanishes: after the linger time the streams are closed
	// and their iterators stopped.
	p.Close()
	select {
	case <-w.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("abandoned stream not reclaimed")
	}
	testutil.WaitFor(t, 10*time.Second, "the daemon's open streams did not return to 0", func() bool { return d.OpenStreams() == 0 })
}

// Bank hands out accounts as references.
type Bank struct {
	d        *daemon.Daemon
	mu       sync.Mutex
	accounts map[string]*Account
}

type Account struct {
	mu      sync.Mutex
	balance float64
}

func (a *Account) Deposit(x float64) { a.mu.Lock(); a.balance += x; a.mu.Unlock() }
func (a *Account) Balance() float64  { a.mu.Lock(); defer a.mu.Unlock(); return a.balance }

// Open returns the account of name, registering it on first use: the
// caller receives a proxy for it.
func (b *Bank) Open(name string) (*Account, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.accounts[name]; ok {
		return a, nil
	}
	a := &Account{}
	if _, err := b.d.Register(a); err != nil {
		return nil, err
	}
	b.accounts[name] = a
	return a, nil
}

// Total sums the balances of accounts passed by reference.
func (b *Bank) Total(ctx context.Context, accounts []*proxy.Proxy) (float64, error) {
	var sum float64
	for _, a := range accounts {
		v, err := proxy.Call[float64](ctx, a, "Balance")
		a.Close()
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

func TestAutoproxy(t *testing.T) {
	d := testutil.Serve(t)
	u, err := d.Register(&Bank{d: d, accounts: map[string]*Account{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	bank, err := proxy.NewURI(u)
	if err != nil {
		t.Fatal(err)
	}
	ann, err := proxy.Call[*proxy.Proxy](ctx, bank, "Open", "ann")
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	var stub struct {
		Open func(ctx context.Context, name string) (*proxy.Proxy, error)
	}
	if err := bank.Bind(&stub); err != nil {
		t.Fatal(err)
	}
	bob, err := stub.Open(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	// The reference outlives the proxy that produced it.
	bank.Close()
	if _, err := ann.Call(ctx, "Deposit", 10.5); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Call(ctx, "Deposit", 2); err != nil {
		t.Fatal(err)
	}
	if got, err := proxy.Call[float64](ctx, ann, "Balance"); err != nil || got != 10.5 {
		t.Fatalf("balance %v, %v", got, err)
	}
	// Untyped decoding shows the reference as a URI.
	bank2, _ := proxy.NewURI(u)
	defer bank2.Close()
	res, err := bank2.Call(ctx, "Open", "ann")
	if err != nil {
		t.Fatal(err)
	}
	vals, err := res.Values()
	if err != nil {
		t.Fatal(err)
	}
	if ref, ok := vals[0].(gopyro.URI); !ok || ref.String() != ann.URI().String() {
		t.Fatalf("untyped reference = %#v, want %s", vals[0], ann.URI())
	}
	// Proxies passed as arguments arrive as proxies.
	total, err := proxy.Call[float64](ctx, bank2, "Total", []*proxy.Proxy{ann, bob})
	if err != nil || total != 12.5 {
		t.Fatalf("total %v, %v", total, err)
	}
	// Unregistered, the account is gone for everyone.
	if err := d.Unregister(ann.URI().Object); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.Call(ctx, "Balance"); !errors.Is(err, gopyro.ErrNotFound) {
		t.Fatalf("after unregister: %v", err)
	}
}

// Listener is a client-side callback object.
type Listener struct {
	got chan string
}

func (l *Listener) Notify(msg string) (string, error) {
	if msg == "fail" {
		return "", gopyro.NewError(gopyro.CodeRemote, "test.ListenerError", "listener refused "+msg)
	}
	l.got <- msg
	return "ack " + msg, nil
}

// Publisher calls its subscribers back.
type Publisher struct{}

func (Publisher) Publish(ctx context.Context, cb *proxy.Proxy, msg string, oneway bool) (string, error) {
	defer cb.Close()
	if oneway {
		return "sent", cb.Oneway(ctx, "Notify", msg)
	}
	reply, err := proxy.Call[string](ctx, cb, "Notify", msg)
	if err != nil {
		var ge *gopyro.Error
		if errors.As(err, &ge) && ge.Remote {
			return "", fmt.Errorf("callback failed remotely (%s): %s", ge.RemoteType, ge.Message)
		}
		return "", err
	}
	return reply, nil
}

func TestCallbacks(t *testing.T) {
	srv := testutil.Serve(t)
	u, err := srv.Register(Publisher{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The client serves its listener on a daemon of its own.
	cbd, err := daemon.Start(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cbd.Close()
	l := &Listener{got: make(chan string, 1)}
	ref, err := cbd.Ref(l)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := cbd.Ref(l); again.URI.String() != ref.URI.String() {
		t.Fatalf("second Ref registered again: %v != %v", again, ref)
	}
	p, err := proxy.NewURI(u)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	reply, err := proxy.Call[string](ctx, p, "Publish", ref, "hello", false)
	if err != nil || reply != "ack hello" || <-l.got != "hello" {
		t.Fatalf("sync callback: %q, %v", reply, err)
	}
	if _, err := proxy.Call[string](ctx, p, "Publish", ref, "bye", true); err != nil {
		t.Fatal(err)
	}
	if got := <-l.got; got != "bye" {
		t.Fatalf("oneway callback got %q", got)
	}
	_, err = proxy.Call[string](ctx, p, "Publish", ref, "fail", false)
	if err == nil || !strings.Contains(err.Error(), "callback failed remotely (test.ListenerError): listener refused fail") {
		t.Fatalf("callback error: %v", err)
	}
}

func TestStreamOnewayClosed(t *testing.T) {
	w, d, p := serveWorker(t)
	if err := p.Oneway(t.Context(), "Lines", 1000); err != nil {
		t.Fatal(err)
	}
	<-w.stopped // the daemon closed the stream nobody reads
	testutil.WaitFor(t, 10*time.Second, "the daemon's open streams did not return to 0", func() bool { return d.OpenStreams() == 0 })
}

// TestStreamCancelledReader: a reader whose context ends mid-stream gets
// the error, and the stream is closed on the server.
func TestStreamCancelledReader(t *testing.T) {
	w, d, p := serveWorker(t, daemon.WithStreamChunk(10))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got error
	n := 0
	for _, err := range proxy.Stream[string](ctx, p, "Lines", 1000) {
		if err != nil {
			got = err
			break
		}
		if n++; n == 15 {
			cancel() // the next fetch fails
		}
	}
	if got == nil || n != 20 {
		t.Fatalf("after cancel: %d items, err %v", n, got)
	}
	<-w.stopped
	testutil.WaitFor(t, 10*time.Second, "the daemon's open streams did not return to 0", func() bool { return d.OpenStreams() == 0 })
}
