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

	"github.com/smallnest/rpcx/client"
	"github.com/smallnest/rpcx/protocol"
	"github.com/smallnest/rpcx/server"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/wire"
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
			p, err := proxy.New(u)
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
// oneway call).
func RPCX() (*System, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	wire.QuietRPCX()
	var notes atomic.Int64
	s := server.NewServer()
	s.DisableHTTPGateway, s.DisableJSONRPC = true, true
	s.AddHandler("bench", "echo", func(c *server.Context) error {
		if c.Metadata()["w"] == "1" {
			notes.Add(1)
			return nil
		}
		return c.Write(c.Payload())
	})
	go s.ServeListener("raw", ln)
	<-s.Started
	addr := ln.Addr().String()
	return &System{
		Name:   "rpcx",
		Shared: true,
		Dial: func(ctx context.Context) (Client, error) {
			opt := client.DefaultOption
			opt.SerializeType = protocol.SerializeNone
			opt.Retries = 0
			c := client.NewClient(opt)
			if err := c.Connect("tcp", addr); err != nil {
				return nil, err
			}
			return &rpcxClient{c: c}, nil
		},
		Executed: notes.Load,
		Close:    s.Close,
	}, nil
}

type rpcxClient struct {
	c   *client.Client
	seq atomic.Uint64
}

func (r *rpcxClient) send(ctx context.Context, b []byte, oneway bool) ([]byte, error) {
	m := protocol.NewMessage()
	m.SetMessageType(protocol.Request)
	m.SetSerializeType(protocol.SerializeNone)
	m.SetSeq(r.seq.Add(1) + 1<<62)
	if oneway {
		m.SetOneway(true)
		m.Metadata = map[string]string{"w": "1"}
	}
	m.ServicePath, m.ServiceMethod = "bench", "echo"
	m.Payload = b
	_, reply, err := r.c.SendRaw(ctx, m)
	return reply, err
}

func (r *rpcxClient) Echo(ctx context.Context, b []byte) ([]byte, error) {
	return r.send(ctx, b, false)
}
func (r *rpcxClient) Oneway(ctx context.Context, b []byte) error {
	_, err := r.send(ctx, b, true)
	return err
}
func (r *rpcxClient) Close() error { return r.c.Close() }

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
