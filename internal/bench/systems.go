// Package bench measures gopyro against baselines doing the same work on
// the same machine in the same run: raw TCP (length-prefixed echo, the
// floor), raw rpcx (SendRaw through a raw handler) and the standard
// library's net/rpc. "gopyro bench" and the go test benchmarks of this
// package both run it.
package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"sync"
	"sync/atomic"

	"github.com/smallnest/rpcx/protocol"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/rpcxserver"
	"github.com/gopyro/gopyro/proxy"
)

// Client makes calls on one connection.
type Client interface {
	// Echo sends b and returns what the server sent back.
	Echo(ctx context.Context, b []byte) ([]byte, error)
	// Oneway sends b without waiting; the server counts it.
	Oneway(ctx context.Context, b []byte) error
	Close() error
}

// System is a server under test and a way to connect to it.
type System struct {
	Name string
	// Shared reports that one Client may be used by many goroutines.
	Shared bool
	// Dial opens a new connection.
	Dial func(ctx context.Context) (Client, error)
	// Executed returns how many oneway calls the server has run.
	Executed func() int64
	Close    func() error
}

var errNoOneway = errors.New("no oneway calls")

// BenchObject is what the gopyro daemon serves.
type BenchObject struct{ notes atomic.Int64 }

// Echo returns b.
func (o *BenchObject) Echo(b []byte) []byte { return b }

// Note counts a oneway call.
func (o *BenchObject) Note(b []byte) { o.notes.Add(1) }

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// Gopyro serves a BenchObject on a daemon.
func Gopyro() (*System, *daemon.Daemon, error) {
	ln, err := listen()
	if err != nil {
		return nil, nil, err
	}
	d, err := daemon.New(daemon.WithMaxMessageSize(64 << 20))
	if err != nil {
		return nil, nil, err
	}
	go d.Serve(context.Background(), ln)
	<-d.Ready()
	obj := &BenchObject{}
	u, err := d.Register(obj, daemon.WithID("bench"))
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return &System{
		Name:   "gopyro",
		Shared: true,
		Dial: func(ctx context.Context) (Client, error) {
			p, err := proxy.NewURI(u)
			if err != nil {
				return nil, err
			}
			return gopyroClient{p}, p.Ping(ctx) // connect now
		},
		Executed: obj.notes.Load,
		Close:    d.Close,
	}, d, nil
}

type gopyroClient struct{ p *proxy.Proxy }

func (c gopyroClient) Echo(ctx context.Context, b []byte) ([]byte, error) {
	return proxy.Call[[]byte](ctx, c.p, "Echo", b)
}
func (c gopyroClient) Oneway(ctx context.Context, b []byte) error { return c.p.Oneway(ctx, "Note", b) }
func (c gopyroClient) Close() error                               { return c.p.Close() }

// RPCX serves a raw rpcx handler that echoes the payload (or counts a
// oneway call). Its client speaks rpcx's frames through rpcx's own codec
// (protocol.Message's Encode and Decode, as rpcx's client does): rpcx's
// client package itself is left out of the gopyro binary, as it brings a
// second mDNS library, ICMP ping and more (its figures, measured in
// bench_test.go's BenchmarkRPCXClient, are within noise of this client's).
func RPCX() (*System, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	var notes atomic.Int64
	stop := rpcxserver.ServeBaseline(ln, func(meta map[string]string, payload []byte) ([]byte, bool) {
		if meta["w"] == "1" {
			notes.Add(1)
			return nil, false
		}
		return payload, true
	})
	addr := ln.Addr().String()
	return &System{
		Name:   "rpcx",
		Shared: true,
		Dial: func(ctx context.Context) (Client, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return newRPCXClient(c), nil
		},
		Executed: notes.Load,
		Close:    stop,
	}, nil
}

// rpcxClient sends rpcx frames encoded by protocol.Message and matches the
// replies, decoded by protocol.Message, to callers by sequence number.
type rpcxClient struct {
	c   net.Conn
	seq atomic.Uint64
	wmu sync.Mutex

	mu      sync.Mutex
	pending map[uint64]chan *protocol.Message // guarded by mu
	err     error                             // guarded by mu
	done    chan struct{}
}

func newRPCXClient(c net.Conn) *rpcxClient {
	r := &rpcxClient{c: c, pending: map[uint64]chan *protocol.Message{}, done: make(chan struct{})}
	go r.read()
	return r
}

func (r *rpcxClient) read() {
	defer close(r.done)
	br := bufio.NewReaderSize(r.c, 64<<10)
	for {
		m := protocol.NewMessage()
		if err := m.Decode(br); err != nil {
			r.mu.Lock()
			r.err = err
			for _, ch := range r.pending {
				close(ch)
			}
			r.pending = nil
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		ch := r.pending[m.Seq()]
		delete(r.pending, m.Seq())
		r.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

func (r *rpcxClient) send(ctx context.Context, b []byte, oneway bool) ([]byte, error) {
	m := protocol.NewMessage()
	m.SetMessageType(protocol.Request)
	m.SetSerializeType(protocol.SerializeNone)
	seq := r.seq.Add(1)
	m.SetSeq(seq)
	if oneway {
		m.SetOneway(true)
		m.Metadata = map[string]string{"w": "1"}
	}
	m.ServicePath, m.ServiceMethod = "bench", "echo"
	m.Payload = b
	var ch chan *protocol.Message
	if !oneway {
		ch = make(chan *protocol.Message, 1)
		r.mu.Lock()
		if r.pending == nil {
			err := r.err
			r.mu.Unlock()
			return nil, err
		}
		r.pending[seq] = ch
		r.mu.Unlock()
	}
	data := m.EncodeSlicePointer()
	r.wmu.Lock()
	_, err := r.c.Write(*data)
	r.wmu.Unlock()
	protocol.PutData(data)
	if err != nil || oneway {
		return nil, err
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return nil, errors.New("rpcx baseline: connection closed")
		}
		if rep.MessageStatusType() == protocol.Error {
			return nil, fmt.Errorf("rpcx baseline: %s", rep.Metadata[protocol.ServiceError])
		}
		return rep.Payload, nil
	case <-ctx.Done():
		r.mu.Lock()
		delete(r.pending, seq)
		r.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (r *rpcxClient) Echo(ctx context.Context, b []byte) ([]byte, error) {
	return r.send(ctx, b, false)
}
func (r *rpcxClient) Oneway(ctx context.Context, b []byte) error {
	_, err := r.send(ctx, b, true)
	return err
}
func (r *rpcxClient) Close() error {
	err := r.c.Close()
	<-r.done
	return err
}

// NetRPCService is served by the net/rpc baseline.
type NetRPCService struct{}

// Echo copies args to reply.
func (NetRPCService) Echo(args []byte, reply *[]byte) error { *reply = args; return nil }

// NetRPC serves the standard library's net/rpc (gob) over TCP.
func NetRPC() (*System, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	s := rpc.NewServer()
	if err := s.Register(NetRPCService{}); err != nil {
		return nil, err
	}
	go func() {
		// Not s.Accept: it logs through the log package when the listener
		// closes.
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(c)
		}
	}()
	addr := ln.Addr().String()
	return &System{
		Name:   "net/rpc",
		Shared: true,
		Dial: func(context.Context) (Client, error) {
			c, err := rpc.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return netrpcClient{c}, nil
		},
		Close: ln.Close,
	}, nil
}

type netrpcClient struct{ c *rpc.Client }

func (n netrpcClient) Echo(_ context.Context, b []byte) ([]byte, error) {
	var reply []byte
	err := n.c.Call("NetRPCService.Echo", b, &reply)
	return reply, err
}
func (n netrpcClient) Oneway(context.Context, []byte) error { return errNoOneway }
func (n netrpcClient) Close() error                         { return n.c.Close() }

// TCP serves a length-prefixed echo: 4 bytes of length, then the bytes.
// The top bit of the length marks a oneway message (no reply).
func TCP() (*System, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	var notes atomic.Int64
	var (
		wg    sync.WaitGroup // the accept loop and one per connection
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				r := bufio.NewReaderSize(c, 64<<10)
				var hdr [4]byte
				var buf []byte
				for {
					if _, err := io.ReadFull(r, hdr[:]); err != nil {
						return
					}
					n := binary.BigEndian.Uint32(hdr[:])
					oneway := n&(1<<31) != 0
					n &^= 1 << 31
					if cap(buf) < int(n) {
						buf = make([]byte, n)
					}
					buf = buf[:n]
					if _, err := io.ReadFull(r, buf); err != nil {
						return
					}
					if oneway {
						notes.Add(1)
						continue
					}
					bufs := net.Buffers{hdr[:], buf}
					if _, err := bufs.WriteTo(c); err != nil {
						return
					}
				}
			}()
		}
	}()
	addr := ln.Addr().String()
	return &System{
		Name: "tcp",
		Dial: func(context.Context) (Client, error) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return &tcpClient{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
		},
		Executed: notes.Load,
		Close: func() error {
			err := ln.Close()
			mu.Lock()
			for c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
			return err
		},
	}, nil
}

type tcpClient struct {
	mu sync.Mutex
	c  net.Conn
	r  *bufio.Reader
}

func (t *tcpClient) write(b []byte, oneway bool) error {
	if len(b) >= 1<<31 {
		return fmt.Errorf("message too large")
	}
	var hdr [4]byte
	n := uint32(len(b))
	if oneway {
		n |= 1 << 31
	}
	binary.BigEndian.PutUint32(hdr[:], n)
	bufs := net.Buffers{hdr[:], b}
	_, err := bufs.WriteTo(t.c)
	return err
}

func (t *tcpClient) Echo(_ context.Context, b []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.write(b, false); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(t.r, hdr[:]); err != nil {
		return nil, err
	}
	out := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err := io.ReadFull(t.r, out)
	return out, err
}

func (t *tcpClient) Oneway(_ context.Context, b []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.write(b, true)
}

func (t *tcpClient) Close() error { return t.c.Close() }
