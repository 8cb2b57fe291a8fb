package daemon_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/internal/wire"
	"github.com/gopyro/gopyro/proxy"
)

// rawConns opens n TCP connections to u that send nothing.
func rawConns(t *testing.T, u gopyro.URI, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for range n {
		c, err := net.Dial("tcp", u.Address())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs
}

// closedByPeer waits (bounded) until the daemon closes c.
func closedByPeer(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c) // EOF, or a reset: closed either way
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the daemon did not close the connection within %v: %v", within, err)
	}
}

// TestSilentConnectionsFreeTheirSlots: connections that never send a
// request do not hold the daemon's slots forever (issue 11, item 1).
func TestSilentConnectionsFreeTheirSlots(t *testing.T) {
	_, _, u := gateProxy(t, daemon.WithMaxConns(2), daemon.WithHandshakeTimeout(300*time.Millisecond))
	for _, c := range rawConns(t, u, 2) {
		closedByPeer(t, c, 5*time.Second)
	}
	p := newProxy(t, u)
	testutil.WaitFor(t, 5*time.Second, "a good client was not served after the silent connections timed out", func() bool {
		_, err := p.Call(t.Context(), "Quick")
		return err == nil
	})
}

// TestIdleConnectionClosed: a connection that made a call and then went
// quiet is closed after the idle timeout; a proxy then redials.
func TestIdleConnectionClosed(t *testing.T) {
	_, _, u := gateProxy(t, daemon.WithIdleTimeout(300*time.Millisecond))
	cl, err := wire.DialClient(t.Context(), "tcp", u.Address(), wire.DialOptions{MaxFrame: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sendRaw(t, cl, nil, []byte{0x90}) // one call, then silence
	testutil.WaitFor(t, 5*time.Second, "an idle connection was not closed", cl.Broken)

	p := newProxy(t, u)
	if s, err := proxy.Call[string](t.Context(), p, "Quick"); err != nil || s != "quick" {
		t.Fatalf("a new connection after an idle close: %q %v", s, err)
	}
}

// TestBusyConnectionNotIdle: a call running longer than the idle timeout
// keeps its connection: waiting for a reply is not idleness.
func TestBusyConnectionNotIdle(t *testing.T) {
	g, _, u := gateProxy(t, daemon.WithIdleTimeout(100*time.Millisecond))
	p := newProxy(t, u)
	f := p.Go(t.Context(), "Wait")
	<-g.entered
	time.AfterFunc(500*time.Millisecond, func() { close(g.release) })
	res, err := f.Wait(t.Context())
	if err != nil {
		t.Fatalf("a call longer than the idle timeout: %v", err)
	}
	var s string
	if err := res.Decode(&s); err != nil || s != "released" {
		t.Fatalf("%q %v", s, err)
	}
}

// TestTrickledFrameCut: a peer that sends a frame a byte at a time
// (slowloris) is cut off after the frame timeout.
func TestTrickledFrameCut(t *testing.T) {
	_, _, u := gateProxy(t, daemon.WithFrameTimeout(300*time.Millisecond), daemon.WithHandshakeTimeout(300*time.Millisecond))
	c := rawConns(t, u, 1)[0]
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// A valid header start, then a byte every 50ms, forever.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for _, b := range append([]byte{0x08, 0, 0, 0}, make([]byte, 1000)...) {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	closedByPeer(t, c, 5*time.Second)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a trickled frame held its connection %v", took)
	}
}

// Blob returns n bytes: large replies from small requests.
type Blob struct{}

func (Blob) Get(n int) []byte { return make([]byte, n) }

// TestClientThatStopsReading: a client that sends requests and never reads
// the replies is disconnected after the write timeout, instead of its
// replies piling up behind blocked writes (issue 11, items 2 and 3).
func TestClientThatStopsReading(t *testing.T) {
	d := testutil.Serve(t, daemon.WithWriteTimeout(300*time.Millisecond))
	u, err := d.Register(Blob{}, daemon.WithID("blob"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Address())
	if err != nil {
		t.Fatal(err)
	}
	deaf := deafConn{Conn: c, stop: make(chan struct{})}
	defer close(deaf.stop)
	cl := wire.NewClient(deaf, 64<<20) // writes frames; never reads a byte
	defer cl.Close()
	args, _ := wire.EncodeArray(1 << 20)
	meta := map[string]string{wire.MetaObject: "blob", wire.MetaMethod: "Get", wire.MetaOneway: ""}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for range 64 { // 64 MiB of replies: far beyond the socket buffers
		go cl.Send(ctx, wire.Call{Meta: meta, Payload: [][]byte{args}})
	}
	// The daemon must give up on this client (writes to it then fail),
	// and go on serving others.
	probe := map[string]string{wire.MetaObject: gopyro.DaemonID, wire.MetaMethod: wire.MethodPing, wire.MetaOneway: "1"}
	testutil.WaitFor(t, 10*time.Second, "a client that stopped reading was not disconnected", func() bool {
		_, err := cl.Send(ctx, wire.Call{Meta: probe, Payload: [][]byte{{0x90}}, Oneway: true})
		return err != nil
	})
	p := newProxy(t, u)
	if _, err := proxy.Call[[]byte](t.Context(), p, "Get", 10); err != nil {
		t.Fatal(err)
	}
}

// deafConn never reads: its Read blocks until stop is closed.
type deafConn struct {
	net.Conn
	stop chan struct{}
}

func (d deafConn) Read([]byte) (int, error) {
	<-d.stop
	return 0, io.EOF
}

// TestCloseEndsRefusals: the goroutine that tells a refused connection why
// is owned by the daemon: Close ends it (and its connection) at once.
func TestCloseEndsRefusals(t *testing.T) {
	d := testutil.Serve(t, daemon.WithMaxConns(1))
	u, err := d.Register(Blob{}, daemon.WithID("blob"))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u)
	if err := p.Ping(t.Context()); err != nil { // holds the one slot
		t.Fatal(err)
	}
	c := rawConns(t, u, 1)[0]
	// Read the refusal frame's header: the refusing goroutine is now
	// waiting for this peer to go away.
	if _, err := io.ReadFull(c, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	// The refusal half-closed the daemon's side; while the goroutine runs
	// it still reads (and discards) what this peer writes. Once it has
	// ended, writes here fail (the daemon's side is gone).
	d.Close()
	deadline := time.Now().Add(refuseCut)
	for {
		if _, err := c.Write(make([]byte, 1024)); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refused connection was still read %v after Close", refuseCut)
		}
		time.Sleep(time.Millisecond) // let the RST arrive
	}
}

// refuseCut is well under the daemon's one-second refusal bound.
const refuseCut = 500 * time.Millisecond

// A TLS connection that never sends its ClientHello is closed by the
// handshake timeout, and its slot comes back (issue 11 item 1).
func TestSilentTLSHandshakeCut(t *testing.T) {
	srvTLS, _ := selfSigned(t)
	d := testutil.Serve(t, daemon.WithTLS(srvTLS), daemon.WithHandshakeTimeout(200*time.Millisecond), daemon.WithMaxConns(1))
	addr := d.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testutil.WaitFor(t, 5*time.Second, "the silent connection to be counted", func() bool { return d.Stats().Conns == 1 })
	testutil.WaitFor(t, 5*time.Second, "the silent TLS connection to be closed", func() bool { return d.Stats().Conns == 0 })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent connection is still open")
	}
}
