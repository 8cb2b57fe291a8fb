package bench

import (
	"context"
	"fmt"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/proxy"
)

// Env is the servers of one benchmark run.
type Env struct {
	Systems []*System // gopyro first
	daemon  *daemon.Daemon
	ns      *nameserver.Server
	nsAddr  string
	nsc     *nameserver.Client
}

// NewEnv starts gopyro (with a name server that knows it as "bench") and
// the baselines, all on 127.0.0.1.
func NewEnv(ctx context.Context) (*Env, error) {
	g, d, err := Gopyro()
	if err != nil {
		return nil, err
	}
	e := &Env{Systems: []*System{g}, daemon: d}
	for _, start := range []func() (*System, error){RPCX, NetRPC, TCP} {
		s, err := start()
		if err != nil {
			e.Close()
			return nil, err
		}
		e.Systems = append(e.Systems, s)
	}
	ln, err := listen()
	if err != nil {
		e.Close()
		return nil, err
	}
	if e.ns, err = nameserver.New(); err != nil {
		e.Close()
		return nil, err
	}
	go e.ns.Serve(context.Background(), ln)
	<-e.ns.Ready()
	e.nsAddr = ln.Addr().String()
	if e.nsc, err = nameserver.NewClient(e.nsAddr); err != nil {
		e.Close()
		return nil, err
	}
	u, _ := d.URI("bench")
	if err := e.nsc.Register(ctx, "bench", u); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Close stops every server.
func (e *Env) Close() {
	if e.nsc != nil {
		e.nsc.Close()
	}
	if e.ns != nil {
		e.ns.Close()
	}
	for _, s := range e.Systems {
		_ = s.Close()
	}
}

// Case is one measurement, made for gopyro and for each baseline.
type Case struct {
	Name string
	Unit string // always a rate: higher is better
	Doc  string
	// Op returns the work of one system: run(i) does one unit of work on
	// goroutine i; units is how many Unit one run counts. ok is false when
	// the system cannot do this work.
	Op func(ctx context.Context, e *Env, s *System, goroutines int) (run func(i int) error, units float64, done func(), ok bool, err error)
	// Goroutines running Op at once.
	Goroutines int
	// Baseline says what the baselines run when it is not the same work.
	Baseline string
	// Oneway: the figure is oneway calls run by the server per second.
	Oneway bool
}

var small = []byte("0123456789abcdef")

// clients dials n clients (one when shared is set).
func clients(ctx context.Context, s *System, n int, shared bool) ([]Client, func(), error) {
	var cs []Client
	closeAll := func() {
		for _, c := range cs {
			c.Close()
		}
	}
	for range n {
		if shared && len(cs) == 1 {
			cs = append(cs, cs[0])
			continue
		}
		c, err := s.Dial(ctx)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		cs = append(cs, c)
	}
	if shared {
		return cs, func() { cs[0].Close() }, nil
	}
	return cs, closeAll, nil
}

func echoOp(size int, shared bool) func(context.Context, *Env, *System, int) (func(int) error, float64, func(), bool, error) {
	return func(ctx context.Context, e *Env, s *System, g int) (func(int) error, float64, func(), bool, error) {
		if shared && !s.Shared {
			return nil, 0, nil, false, nil
		}
		cs, done, err := clients(ctx, s, g, shared)
		if err != nil {
			return nil, 0, nil, false, err
		}
		msg := small
		units := 1.0
		if size > 0 {
			msg = make([]byte, size)
			for i := range msg {
				msg[i] = byte(i)
			}
			units = float64(size) / 1e6
		}
		return func(i int) error {
			out, err := cs[i].Echo(ctx, msg)
			if err == nil && len(out) != len(msg) {
				err = fmt.Errorf("echo returned %d bytes, want %d", len(out), len(msg))
			}
			return err
		}, units, done, true, nil
	}
}

func connectOp(ctx context.Context, e *Env, s *System, _ int) (func(int) error, float64, func(), bool, error) {
	return func(int) error {
		c, err := s.Dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Echo(ctx, small)
		return err
	}, 1, func() {}, true, nil
}

// Cases lists every case, in the order they run.
func Cases() []Case {
	return []Case{
		{Name: "small", Unit: "calls/s", Doc: "16-byte echo, one client", Goroutines: 1, Op: echoOp(0, false)},
		{Name: "small-8conn", Unit: "calls/s", Doc: "16-byte echo, 8 clients on 8 connections", Goroutines: 8, Op: echoOp(0, false)},
		{Name: "small-8shared", Unit: "calls/s", Doc: "16-byte echo, 8 goroutines sharing one client", Goroutines: 8, Op: echoOp(0, true)},
		{Name: "oneway", Unit: "calls/s", Doc: "oneway calls run by the server per second (first send to the last call run), one client", Goroutines: 1, Oneway: true,
			Op: func(ctx context.Context, e *Env, s *System, g int) (func(int) error, float64, func(), bool, error) {
				if s.Executed == nil {
					return nil, 0, nil, false, nil
				}
				cs, done, err := clients(ctx, s, 1, false)
				if err != nil {
					return nil, 0, nil, false, err
				}
				return func(int) error { return cs[0].Oneway(ctx, small) }, 1, done, true, nil
			}},
		{Name: "batch-100", Unit: "calls/s", Doc: "100 calls: one batch (gopyro), one by one (baselines)", Goroutines: 1, Baseline: "100 single calls",
			Op: func(ctx context.Context, e *Env, s *System, g int) (func(int) error, float64, func(), bool, error) {
				if s.Name != "gopyro" {
					run, _, done, ok, err := echoOp(0, false)(ctx, e, s, 1)
					if !ok || err != nil {
						return nil, 0, nil, ok, err
					}
					return func(i int) error {
						for range 100 {
							if err := run(i); err != nil {
								return err
							}
						}
						return nil
					}, 100, done, true, nil
				}
				p, err := proxy.New(e.gopyroURI())
				if err != nil {
					return nil, 0, nil, false, err
				}
				return func(int) error {
					b := p.Batch()
					for range 100 {
						b.Call("Echo", small)
					}
					res, err := b.Run(ctx)
					if err == nil && res[99].Err != nil {
						err = res[99].Err
					}
					return err
				}, 100, func() { p.Close() }, true, nil
			}},
		{Name: "echo-1MiB", Unit: "MB/s", Doc: "1 MiB echoed, one client", Goroutines: 1, Op: echoOp(1<<20, false)},
		{Name: "echo-16MiB", Unit: "MB/s", Doc: "16 MiB echoed, one client", Goroutines: 1, Op: echoOp(16<<20, false)},
		{Name: "connect", Unit: "conns/s", Doc: "connect, first call, close", Goroutines: 1, Op: connectOp},
		{Name: "ns-lookup", Unit: "calls/s", Doc: "name server lookup (baselines: a small call)", Goroutines: 1, Baseline: "small call",
			Op: func(ctx context.Context, e *Env, s *System, g int) (func(int) error, float64, func(), bool, error) {
				if s.Name != "gopyro" {
					return echoOp(0, false)(ctx, e, s, 1)
				}
				return func(int) error {
					_, err := e.nsc.Lookup(ctx, "bench")
					return err
				}, 1, func() {}, true, nil
			}},
		{Name: "pyroname", Unit: "conns/s", Doc: "PYRONAME proxy, lookup, connect, first call (baselines: connect and first call)", Goroutines: 1, Baseline: "connect",
			Op: func(ctx context.Context, e *Env, s *System, g int) (func(int) error, float64, func(), bool, error) {
				if s.Name != "gopyro" {
					return connectOp(ctx, e, s, 1)
				}
				uri := "PYRONAME:bench@" + e.nsAddr
				return func(int) error {
					p, err := proxy.New(uri)
					if err != nil {
						return err
					}
					defer p.Close()
					_, err = proxy.Call[[]byte](ctx, p, "Echo", small)
					return err
				}, 1, func() {}, true, nil
			}},
	}
}

func (e *Env) gopyroURI() string {
	u, _ := e.daemon.URI("bench")
	return u.String()
}
