package daemon_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/internal/wire"
	"github.com/gopyro/gopyro/proxy"
)

// Gate blocks callers until released and reports entries and cancellations.
type Gate struct {
	entered   chan struct{}
	release   chan struct{}
	cancelled chan error
}

func newGate() *Gate {
	return &Gate{entered: make(chan struct{}, 16), release: make(chan struct{}), cancelled: make(chan error, 16)}
}

func (g *Gate) Wait(ctx context.Context) (string, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return "released", nil
	case <-ctx.Done():
		g.cancelled <- ctx.Err()
		return "", ctx.Err()
	}
}

func (g *Gate) Quick() string { return "quick" }

func gateProxy(t *testing.T, opts ...daemon.Option) (*Gate, *daemon.Daemon, gopyro.URI) {
	t.Helper()
	d := testutil.Serve(t, opts...)
	g := newGate()
	u, err := d.Register(g, daemon.WithID("gate"))
	if err != nil {
		t.Fatal(err)
	}
	return g, d, u
}

func newProxy(t *testing.T, u gopyro.URI, opts ...proxy.Option) *proxy.Proxy {
	t.Helper()
	p, err := proxy.NewURI(u, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestShutdownDrainsInFlightCalls(t *testing.T) {
	g, d, u := gateProxy(t)
	p := newProxy(t, u)
	f := p.Go(t.Context(), "Wait")
	<-g.entered
	done := make(chan error, 1)
	go func() { done <- d.Shutdown(t.Context()) }()
	// New connections are refused while draining.
	q := newProxy(t, u)
	testutil.WaitFor(t, 10*time.Second, "calls to be refused while draining", func() bool {
		_, err := q.Call(t.Context(), "Quick")
		if err == nil {
			return false // Shutdown has not closed the listener yet
		}
		if c := gopyro.CodeOf(err); c != gopyro.CodeCommunication && c != gopyro.CodeClosed {
			t.Fatalf("call during shutdown: %v", err)
		}
		return true
	})
	close(g.release)
	res, err := f.Wait(t.Context())
	if err != nil {
		t.Fatalf("in-flight call was not drained: %v", err)
	}
	var s string
	if err := res.Decode(&s); err != nil || s != "released" {
		t.Fatalf("drained call = %q %v", s, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	g, d, u := gateProxy(t)
	p := newProxy(t, u)
	f := p.Go(t.Context(), "Wait")
	<-g.entered
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err := d.Shutdown(ctx)
	if _, typed := errors.AsType[*gopyro.Error](err); !typed || !errors.Is(err, gopyro.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want a *gopyro.Error with CodeTimeout wrapping the deadline", err)
	}
	// Close cancelled the method's context.
	if err := <-g.cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("method ctx: %v", err)
	}
	if _, err := f.Wait(t.Context()); err == nil {
		t.Fatal("call survived Close")
	}
}

func TestClientDisconnectCancelsMethod(t *testing.T) {
	g, _, u := gateProxy(t)
	p := newProxy(t, u)
	p.Go(t.Context(), "Wait")
	<-g.entered
	p.Close()
	if err := <-g.cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("method ctx after disconnect: %v", err)
	}
	// The daemon keeps serving others.
	q := newProxy(t, u)
	if s, err := proxy.Call[string](t.Context(), q, "Quick"); err != nil || s != "quick" {
		t.Fatalf("after disconnect: %q %v", s, err)
	}
}

func TestMaxInFlight(t *testing.T) {
	g, _, u := gateProxy(t, daemon.WithMaxInFlight(1))
	p := newProxy(t, u)
	f := p.Go(t.Context(), "Wait")
	<-g.entered
	if _, err := p.Call(t.Context(), "Quick"); !errors.Is(err, gopyro.ErrBusy) {
		t.Fatalf("over the limit: %v", err)
	}
	close(g.release)
	if _, err := f.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Call(t.Context(), "Quick"); err != nil {
		t.Fatalf("after the limit cleared: %v", err)
	}
}

func TestMaxConns(t *testing.T) {
	_, _, u := gateProxy(t, daemon.WithMaxConns(1))
	p := newProxy(t, u)
	if _, err := p.Call(t.Context(), "Quick"); err != nil {
		t.Fatal(err)
	}
	// Over the limit: a typed busy error that says why, not a reset that
	// looks like a network failure (issue 11, item 1).
	q := newProxy(t, u)
	_, err := q.Call(t.Context(), "Quick")
	if !errors.Is(err, gopyro.ErrBusy) || !strings.Contains(err.Error(), "connection limit") {
		t.Fatalf("second connection: %v (code %v)", err, gopyro.CodeOf(err))
	}
	p.Close()
	// The slot frees when the first connection closes; the daemon notices
	// asynchronously, so retry until it has.
	testutil.WaitFor(t, 10*time.Second, "the slot of a closed connection did not come back", func() bool {
		_, err := q.Call(t.Context(), "Quick")
		if err != nil && !errors.Is(err, gopyro.ErrBusy) {
			t.Fatal(err)
		}
		return err == nil
	})
}

func TestToken(t *testing.T) {
	_, _, u := gateProxy(t, daemon.WithToken("s3cret"))
	for _, tok := range []string{"", "wrong"} {
		p := newProxy(t, u, proxy.WithToken(tok))
		if _, err := p.Call(t.Context(), "Quick"); !errors.Is(err, gopyro.ErrSecurity) {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
	p := newProxy(t, u, proxy.WithToken("s3cret"))
	if _, err := p.Call(t.Context(), "Quick"); err != nil {
		t.Fatal(err)
	}
}

func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gopyro test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestTLS(t *testing.T) {
	srvCfg, pool := selfSigned(t)
	srvCfg.ClientAuth = tls.RequireAndVerifyClientCert
	srvCfg.ClientCAs = pool
	_, _, u := gateProxy(t, daemon.WithTLS(srvCfg))
	p := newProxy(t, u, proxy.WithTLS(&tls.Config{RootCAs: pool, Certificates: srvCfg.Certificates}))
	if s, err := proxy.Call[string](t.Context(), p, "Quick"); err != nil || s != "quick" {
		t.Fatalf("TLS call: %q %v", s, err)
	}
	noCert := newProxy(t, u, proxy.WithTLS(&tls.Config{RootCAs: pool}), proxy.WithTimeout(5*time.Second))
	if _, err := noCert.Call(t.Context(), "Quick"); err == nil {
		t.Fatal("call without a client certificate succeeded")
	}
	plain := newProxy(t, u, proxy.WithTimeout(5*time.Second))
	if _, err := plain.Call(t.Context(), "Quick"); err == nil {
		t.Fatal("plain call to a TLS daemon succeeded")
	}
}

// rawConn dials the daemon of u without gopyro.
func rawConn(t *testing.T, u gopyro.URI) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", u.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a failure bound, not a wait
	return c
}

func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // an error reply may come first
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("daemon did not close the connection")
		}
		return
	}
}

func TestGarbageBytes(t *testing.T) {
	_, _, u := gateProxy(t)
	for _, garbage := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x08\x01", strings.Repeat("\xff", 4096)} {
		c := rawConn(t, u)
		if _, err := c.Write([]byte(garbage)); err != nil {
			t.Fatal(err)
		}
		if len(garbage) > 2 {
			expectClosed(t, c)
		} else {
			c.Close() // a truncated header, then the peer vanishes
		}
	}
	p := newProxy(t, u)
	if _, err := p.Call(t.Context(), "Quick"); err != nil {
		t.Fatalf("daemon died from garbage: %v", err)
	}
}

func TestLyingLengthHeader(t *testing.T) {
	_, _, u := gateProxy(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c := rawConn(t, u)
	hdr := make([]byte, 16)
	hdr[0], hdr[1] = 0x08, 0
	binary.BigEndian.PutUint64(hdr[4:12], 7)
	binary.BigEndian.PutUint32(hdr[12:16], 0xFFFFFFF0) // 4 GiB that never come
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("a lying length cost %d bytes", grew)
	}
	p := newProxy(t, u)
	if _, err := p.Call(t.Context(), "Quick"); err != nil {
		t.Fatal(err)
	}
}

func TestOversizedMessage(t *testing.T) {
	_, p, _ := setup(t, daemon.WithMaxMessageSize(4096))
	_, err := p.Call(t.Context(), "Echo", strings.Repeat("x", 200<<10))
	if !errors.Is(err, gopyro.ErrProtocol) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("oversized: %v", err)
	}
	if s, err := proxy.Call[string](t.Context(), p, "Echo", "small"); err != nil || s != "small" {
		t.Fatalf("after oversized: %q %v", s, err)
	}
}

// sendRaw sends payload to the gate object's route with extra metadata.
func sendRaw(t *testing.T, cl *wire.Client, md map[string]string, payload []byte) (map[string]string, []byte) {
	t.Helper()
	meta := map[string]string{wire.MetaObject: "gate", wire.MetaMethod: "Quick"}
	maps.Copy(meta, md)
	rep, err := cl.Send(t.Context(), wire.Call{Meta: meta, Payload: [][]byte{payload}})
	if err != nil {
		t.Fatalf("payload %x: %v", payload, err)
	}
	return rep.Meta, rep.Payload
}

func TestHostilePayload(t *testing.T) {
	_, _, u := gateProxy(t)
	cl, err := wire.DialClient(t.Context(), "tcp", u.Address(), wire.DialOptions{MaxFrame: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, payload := range [][]byte{
		{0xdd, 0x0f, 0xff, 0xff, 0xff, 0x01},      // array claiming 268M elements
		{0xdf, 0x7f, 0xff, 0xff, 0xff},            // map claiming 2G entries
		{0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, // string claiming 4 GiB
		{0x90, 0x00}, // trailing bytes
		{0xc1},       // never-used code
		append([]byte{0x91}, []byte(strings.Repeat("\x91", 1000))...), // too deep
	} {
		md, reply := sendRaw(t, cl, nil, payload)
		if md[wire.MetaError] != "1" {
			t.Fatalf("payload %d accepted", i)
		}
		if ge := wire.DecodeError(reply); ge.Code != gopyro.CodeProtocol {
			t.Fatalf("payload %d: %v", i, ge)
		}
	}
	// The same, and malformed batch structures, sent as batches.
	batchMeta := map[string]string{wire.MetaMethod: "batch", wire.MetaBatch: wire.BatchAll}
	for i, payload := range [][]byte{
		{0xdd, 0x0f, 0xff, 0xff, 0xff, 0x01},
		{0x91, 0x01},                     // [1]
		{0x91, 0x91, 0xa1, 'Q'},          // [["Q"]]
		{0x91, 0x92, 0x01, 0xc4, 0x00},   // [[1, bin""]]
		{0x91, 0x92, 0xa1, 'Q', 0x91},    // truncated
		{0x91, 0x92, 0xa1, 'Q', 0x90, 0}, // trailing bytes
	} {
		md, reply := sendRaw(t, cl, batchMeta, payload)
		if md[wire.MetaError] != "1" {
			t.Fatalf("batch payload %d accepted", i)
		}
		if ge := wire.DecodeError(reply); ge.Code != gopyro.CodeProtocol {
			t.Fatalf("batch payload %d: %v", i, ge)
		}
	}
	// A well-formed batch whose call carries garbage arguments: that call
	// fails, the batch does not.
	good, _ := wire.EncodeBatch([]wire.BatchCall{{Method: "Quick", Args: []byte{0x90}}, {Method: "Quick", Args: []byte{0xc1}}})
	md, reply := sendRaw(t, cl, batchMeta, good)
	if md[wire.MetaError] == "1" {
		t.Fatalf("batch with one bad call failed as a whole: %s", wire.DecodeError(reply))
	}
	rs, err := wire.DecodeBatchReply(reply, 2)
	if err != nil || rs[0].Status != wire.BatchOK || rs[1].Status != wire.BatchFailed || wire.DecodeError(rs[1].Data).Code != gopyro.CodeProtocol {
		t.Fatalf("batch with one bad call: %v %+v", err, rs)
	}
	// A stream id nobody opened.
	dp := newProxy(t, gopyro.URI{Scheme: gopyro.SchemePyro, Object: gopyro.DaemonID, Host: u.Host, Port: u.Port})
	if _, err := dp.Call(t.Context(), "StreamNext", "0123"); !errors.Is(err, gopyro.ErrNotFound) {
		t.Fatalf("unknown stream: %v", err)
	}
}

// Ring calls itself through one shared proxy: re-entrant calls on one
// connection must not deadlock.
type Ring struct {
	p     atomic.Pointer[proxy.Proxy]
	depth atomic.Int64
}

func (r *Ring) Down(ctx context.Context, n int) (int, error) {
	r.depth.Add(1)
	if n == 0 {
		return 0, nil
	}
	got, err := proxy.Call[int](ctx, r.p.Load(), "Down", n-1)
	return got + 1, err
}

func TestReentrantCalls(t *testing.T) {
	d := testutil.Serve(t)
	r := &Ring{}
	u, err := d.Register(r, daemon.WithID("ring"))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u)
	r.p.Store(p)
	got, err := proxy.Call[int](t.Context(), p, "Down", 3)
	if err != nil || got != 3 || r.depth.Load() != 4 {
		t.Fatalf("Down(3) = %d %v, depth %d", got, err, r.depth.Load())
	}
}

func TestRedialAfterRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	d1, err := daemon.New()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- d1.Serve(t.Context(), ln) }()
	<-d1.Ready()
	u, err := d1.Register(&Gate{}, daemon.WithID("gate"))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u)
	if _, err := p.Call(t.Context(), "Quick"); err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := p.Call(t.Context(), "Quick"); !errors.Is(err, gopyro.ErrCommunication) {
		t.Fatalf("call with the daemon down: %v", err)
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	d2 := testutil.ServeOn(t, ln2)
	if _, err := d2.Register(&Gate{}, daemon.WithID("gate")); err != nil {
		t.Fatal(err)
	}
	if s, err := proxy.Call[string](t.Context(), p, "Quick"); err != nil || s != "quick" {
		t.Fatalf("after restart: %q %v", s, err)
	}
}

type Counter struct {
	n      int
	closed chan int
}

func (c *Counter) Next() int { c.n++; return c.n }
func (c *Counter) Close() error {
	if c.closed != nil {
		c.closed <- c.n
	}
	return nil
}

func TestInstanceModes(t *testing.T) {
	d := testutil.Serve(t)
	closed := make(chan int, 4)
	var made atomic.Int64
	su, err := d.RegisterFactory(daemon.Session, func() *Counter { made.Add(1); return &Counter{closed: closed} }, daemon.WithID("session"))
	if err != nil {
		t.Fatal(err)
	}
	pu, err := d.RegisterFactory(daemon.PerCall, func(ctx context.Context) (*Counter, error) { return &Counter{}, nil }, daemon.WithID("percall"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := newProxy(t, su), newProxy(t, su)
	for want := 1; want <= 3; want++ {
		if n, err := proxy.Call[int](t.Context(), a, "Next"); err != nil || n != want {
			t.Fatalf("session a: %d %v want %d", n, err, want)
		}
	}
	if n, err := proxy.Call[int](t.Context(), b, "Next"); err != nil || n != 1 {
		t.Fatalf("session b: %d %v", n, err)
	}
	a.Close()
	if n := <-closed; n != 3 {
		t.Fatalf("closed session had %d", n)
	}
	pc := newProxy(t, pu)
	for range 3 {
		if n, err := proxy.Call[int](t.Context(), pc, "Next"); err != nil || n != 1 {
			t.Fatalf("percall: %d %v", n, err)
		}
	}
	if made.Load() != 2 {
		t.Fatalf("session factory ran %d times", made.Load())
	}
	md, err := d.Metadata("session")
	if err != nil || md.Mode != "session" {
		t.Fatalf("metadata %+v %v", md, err)
	}
	if _, err := d.RegisterFactory(daemon.Single, func() *Counter { return nil }); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("factory with Single: %v", err)
	}
	if _, err := d.RegisterFactory(daemon.Session, 42); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("non-func factory: %v", err)
	}
}

// TestCloseRightAfterReady: a Close between Ready and rpcx's accept loop
// starting must still stop Serve.
func TestCloseRightAfterReady(t *testing.T) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		d, err := daemon.New()
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- d.Serve(t.Context(), ln) }()
		<-d.Ready()
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// Keeper keeps the byte slices it is given.
type Keeper struct {
	mu   sync.Mutex
	kept [][]byte
}

func (k *Keeper) Keep(b []byte, v any) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kept = append(k.kept, b, v.([]byte))
	return len(b)
}

// TestRetainedArguments: large []byte arguments share the request buffer
// instead of being copied; a method that keeps them must still see its
// bytes after later requests (rpcx must not reuse request buffers).
func TestRetainedArguments(t *testing.T) {
	d := testutil.Serve(t)
	k := &Keeper{}
	u, err := d.Register(k)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u)
	const n, size = 20, 200 << 10
	for i := range n {
		b := bytes.Repeat([]byte{byte(i)}, size)
		if _, err := p.Call(t.Context(), "Keep", b, b); err != nil {
			t.Fatal(err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, b := range k.kept {
		if len(b) != size || b[0] != byte(i/2) || b[size-1] != byte(i/2) || bytes.Count(b, []byte{byte(i / 2)}) != size {
			t.Fatalf("kept slice %d changed", i)
		}
	}
}

// TestLargeRepliesInterleaved: large replies the daemon writes itself and
// small ones rpcx writes share a connection without mixing their bytes.
func TestLargeRepliesInterleaved(t *testing.T) {
	d := testutil.Serve(t)
	u, err := d.Register(&Calc{}, daemon.WithID("calc"))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if (g+i)%2 == 0 {
					b := bytes.Repeat([]byte{byte(g*20 + i)}, 300<<10+i)
					got, err := proxy.Call[[]byte](t.Context(), p, "Bytes", b)
					if err != nil || !bytes.Equal(got, append(b, '!')) {
						t.Errorf("large echo %d/%d: %d bytes, %v", g, i, len(got), err)
						return
					}
					continue
				}
				s := fmt.Sprint(g, "/", i)
				if got, err := proxy.Call[string](t.Context(), p, "Echo", s); err != nil || got != s {
					t.Errorf("small echo %s: %q, %v", s, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestCanceledCall: a call whose context the caller cancels fails with
// CodeCanceled, which is neither a timeout nor a communication error and
// still matches context.Canceled.
func TestCanceledCall(t *testing.T) {
	g, _, u := gateProxy(t)
	p := newProxy(t, u)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Call(ctx, "Wait")
		errc <- err
	}()
	<-g.entered
	cancel()
	err := <-errc
	if !errors.Is(err, gopyro.ErrCanceled) || !errors.Is(err, context.Canceled) ||
		errors.Is(err, gopyro.ErrTimeout) || errors.Is(err, gopyro.ErrCommunication) {
		t.Fatalf("canceled call: %v (code %v)", err, gopyro.CodeOf(err))
	}
	f := p.Go(t.Context(), "Wait")
	<-g.entered
	wctx, wcancel := context.WithCancel(t.Context())
	wcancel()
	if _, err := f.Wait(wctx); !errors.Is(err, gopyro.ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled wait: %v", err)
	}
	close(g.release)
}

// TestCancelReachesMethod: cancelling a call's context cancels the
// method's context on the daemon, for Call and Go alike, and the
// connection stays up (issue 11, item 9).
func TestCancelReachesMethod(t *testing.T) {
	g, _, u := gateProxy(t)
	p := newProxy(t, u)
	for _, how := range []string{"Call", "Go"} {
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			var err error
			if how == "Call" {
				_, err = p.Call(ctx, "Wait")
			} else {
				_, err = p.Go(ctx, "Wait").Wait(t.Context())
			}
			errc <- err
		}()
		<-g.entered
		cancel()
		select {
		case err := <-g.cancelled:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s: the method's context ended with %v", how, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the caller's cancel never reached the method", how)
		}
		if err := <-errc; !errors.Is(err, gopyro.ErrCanceled) {
			t.Fatalf("%s: %v", how, err)
		}
	}
	// The connection is still the same one, and works.
	if s, err := proxy.Call[string](t.Context(), p, "Quick"); err != nil || s != "quick" {
		t.Fatalf("after cancels: %q %v", s, err)
	}
}

// TestHugeNamesNotEchoed: a 1 MiB method name or object id is refused,
// and the error does not quote it back in full (issue 11, item 17).
func TestHugeNamesNotEchoed(t *testing.T) {
	_, _, u := gateProxy(t)
	dial := func() *wire.Client {
		cl, err := wire.DialClient(t.Context(), "tcp", u.Address(), wire.DialOptions{MaxFrame: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	cl := dial()
	// Names over gopyro.MaxNameLen, within the frame guard's metadata
	// bound: the daemon refuses them, quoting little.
	long := strings.Repeat("m", 3*gopyro.MaxNameLen)
	for _, md := range []map[string]string{{wire.MetaMethod: long}, {wire.MetaObject: long}} {
		meta, reply := sendRaw(t, cl, md, []byte{0x90})
		if meta[wire.MetaError] != "1" {
			t.Fatal("a 12 KiB name was accepted")
		}
		ge := wire.DecodeError(reply)
		if ge.Code != gopyro.CodeProtocol || len(reply) > 4096 {
			t.Fatalf("error of %d bytes, code %v: %.200s", len(reply), ge.Code, ge.Message)
		}
	}
	// A batch naming a long method: its error is bounded too.
	batch, _ := wire.EncodeBatch([]wire.BatchCall{{Method: long, Args: []byte{0x90}}})
	_, reply := sendRaw(t, cl, map[string]string{wire.MetaMethod: wire.BatchMethod, wire.MetaBatch: wire.BatchAll}, batch)
	if len(reply) > 8192 {
		t.Fatalf("batch error of %d bytes echoes the method name", len(reply))
	}
	if meta, reply := sendRaw(t, cl, nil, []byte{0x90}); meta[wire.MetaError] == "1" {
		t.Fatalf("a good call after the long names failed: %v", wire.DecodeError(reply))
	}
	// Names of 1 MiB break the metadata bound: the frame guard refuses
	// the request before rpcx decodes its metadata, with a short error.
	huge := strings.Repeat("m", 1<<20)
	for _, md := range []map[string]string{{wire.MetaMethod: huge}, {wire.MetaObject: huge}} {
		cl := dial()
		meta := map[string]string{wire.MetaObject: "gate", wire.MetaMethod: "Quick"}
		maps.Copy(meta, md)
		_, err := cl.Send(t.Context(), wire.Call{Meta: meta, Payload: [][]byte{{0x90}}})
		if err == nil || !strings.Contains(err.Error(), wire.OversizePrefix+"wire: request metadata") || len(err.Error()) > 1024 {
			t.Fatalf("a 1 MiB name: %.300v", err)
		}
	}
	if meta, reply := sendRaw(t, dial(), nil, []byte{0x90}); meta[wire.MetaError] == "1" {
		t.Fatalf("a good call after the huge names failed: %v", wire.DecodeError(reply))
	}
}
