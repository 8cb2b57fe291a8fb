// Package bench measures gopyro against baselines doing the same work on
// the same machine in the same run: raw TCP (length-prefixed echo, the
// floor), raw rpcx (SendRaw through a raw handler) and the standard
// library's net/rpc. "gopyro bench" and the go test benchmarks of this
// package both run it.
package bench

import (
	"context"
	"errors"
	"net"
	"sync/atomic"

	"github.com/gopyro/gopyro/daemon"
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
	// Addr is the server's address.
	Addr string
}

var errNoOneway = errors.New("no oneway calls")

// BenchObject is what the gopyro daemon serves.
type BenchObject struct{ notes atomic.Int64 }

// Echo returns b.
func (o *BenchObject) Echo(b []byte) []byte { return b }

// Note counts a oneway call.
func (o *BenchObject) Note(b []byte) { o.notes.Add(1) }

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// echoBaseline serves a BenchObject and returns a proxy of it: the plain
// gopyro calls that other measurements are compared with. done stops both.
func echoBaseline() (p *proxy.Proxy, done func(), err error) {
	g, d, err := Gopyro()
	if err != nil {
		return nil, nil, err
	}
	u, _ := d.URI("bench")
	if p, err = proxy.NewURI(u); err != nil {
		g.Close()
		return nil, nil, err
	}
	return p, func() { p.Close(); g.Close() }, nil
}

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

// serveDaemon serves a new daemon on 127.0.0.1 until stop is called.
func serveDaemon(ctx context.Context) (d *daemon.Daemon, stop func(), err error) {
	d, err = daemon.New()
	if err != nil {
		return nil, nil, err
	}
	ln, err := listen()
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- d.Serve(sctx, ln) }()
	<-d.Ready()
	return d, func() { cancel(); <-errc }, nil
}
