package nameserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/wire"
	"github.com/gopyro/gopyro/proxy"
)

// Config holds a name server's settings. The zero Config serves an
// in-memory store with no autoclean and no mDNS; the CLI fills one from
// flags. Options applied to [New] change the same fields.
type Config struct {
	// Store keeps the registrations. Default: a new MemoryStore. The
	// server does not close it.
	Store Store
	// AutoClean, when positive, removes registrations whose daemon has been
	// unreachable for longer than this.
	AutoClean time.Duration
	// MDNS advertises the name server as _gopyro-ns._tcp on the local
	// network (multicast). Off by default.
	MDNS bool
	// DaemonOptions configure the daemon serving the name server (TLS,
	// token, limits).
	DaemonOptions []daemon.Option
	// Logger receives the server's log lines. Default: slog.Default().
	Logger *slog.Logger

	// cleaned, in tests, receives each name autoclean removes.
	cleaned chan<- string
}

// Option changes a Config.
type Option func(*Config)

// WithConfig replaces the whole configuration (later options still apply).
func WithConfig(c Config) Option { return func(dst *Config) { *dst = c } }

// WithStore sets [Config.Store].
func WithStore(s Store) Option { return func(c *Config) { c.Store = s } }

// WithAutoClean sets [Config.AutoClean].
func WithAutoClean(d time.Duration) Option { return func(c *Config) { c.AutoClean = d } }

// WithMDNSAdvertise sets [Config.MDNS]: the name server advertises itself over mDNS.
func WithMDNSAdvertise(on bool) Option { return func(c *Config) { c.MDNS = on } }

// WithDaemonOptions appends to [Config.DaemonOptions].
func WithDaemonOptions(opts ...daemon.Option) Option {
	return func(c *Config) { c.DaemonOptions = append(c.DaemonOptions, opts...) }
}

// WithLogger sets [Config.Logger].
func WithLogger(l *slog.Logger) Option { return func(c *Config) { c.Logger = l } }

// Server is a running name server.
type Server struct {
	opts  Config
	d     *daemon.Daemon
	obj   *object
	ready chan struct{} // closed once the name server object is served
}

// New returns a name server configured by options; it serves nothing
// until [Server.Serve].
func New(options ...Option) (*Server, error) {
	var opts Config
	for _, o := range options {
		o(&opts)
	}
	if opts.AutoClean < 0 {
		return nil, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "nameserver.New", Message: "AutoClean must not be negative"}
	}
	if opts.Store == nil {
		opts.Store = NewMemoryStore()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d, err := daemon.New(append([]daemon.Option{daemon.WithLogger(opts.Logger)}, opts.DaemonOptions...)...)
	if err != nil {
		return nil, err
	}
	return &Server{opts: opts, d: d, obj: &object{store: opts.Store, self: gopyro.NameServerID, log: opts.Logger}, ready: make(chan struct{})}, nil
}

// Ready is closed once the name server answers calls; [Server.URI] works
// then.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// URI returns the name server's URI (PYRO:Pyro.NameServer@host:port).
func (s *Server) URI() gopyro.URI {
	u, _ := s.d.URI(gopyro.NameServerID)
	return u
}

// Serve serves the name server on ln until ctx is done or the server is
// closed; then it returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.d.Serve(ctx, ln) }()
	select {
	case <-s.d.Ready():
	case err := <-errc:
		return err
	}
	uri, err := s.d.Register(s.obj, daemon.WithID(gopyro.NameServerID), daemon.Force(), daemon.WithPyroFacade(&pyroFacade{o: s.obj}))
	if err == nil {
		// Like Pyro, the name server lists itself.
		err = s.opts.Store.Put(Entry{Name: gopyro.NameServerID, URI: uri.String()}, false)
	}
	if err != nil {
		cancel()
		<-errc
		return err
	}
	close(s.ready)
	var wg sync.WaitGroup
	if s.opts.AutoClean > 0 {
		wg.Go(func() { s.autoclean(ctx) })
	}
	if s.opts.MDNS {
		adv, err := advertise(uri, s.opts.Logger)
		if err != nil {
			cancel()
			<-errc
			return err
		}
		defer adv.Shutdown()
	}
	err = <-errc
	cancel()
	wg.Wait()
	return err
}

// Shutdown drains in-flight calls and stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.d.Shutdown(ctx) }

// Close stops the server now.
func (s *Server) Close() error { return s.d.Close() }

// autoclean probes every registered daemon each interval and removes the
// registrations whose daemon has been unreachable for longer than
// Config.AutoClean.
func (s *Server) autoclean(ctx context.Context) {
	limit := s.opts.AutoClean
	interval := min(max(limit/4, 20*time.Millisecond), 30*time.Second)
	t := time.NewTicker(interval)
	defer t.Stop()
	downSince := map[string]time.Time{} // by name
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		all, err := s.opts.Store.All()
		if err != nil {
			s.opts.Logger.Error("nameserver: autoclean: cannot list", "err", err)
			continue
		}
		alive := map[string]bool{} // by daemon location, probed once per round
		for _, e := range all {
			if e.Name == gopyro.NameServerID {
				continue
			}
			u, err := gopyro.Parse(e.URI)
			if err != nil {
				continue
			}
			loc := u.Location()
			up, probed := alive[loc]
			if !probed {
				up = probe(ctx, u, min(interval, 2*time.Second))
				alive[loc] = up
			}
			if up {
				delete(downSince, e.Name)
				continue
			}
			since, seen := downSince[e.Name]
			if !seen {
				downSince[e.Name] = time.Now()
				continue
			}
			if time.Since(since) < limit || ctx.Err() != nil {
				continue
			}
			// Remove only if the registration is still the one we probed.
			if cur, ok, _ := s.opts.Store.Get(e.Name); ok && cur.URI == e.URI {
				if _, err := s.opts.Store.Delete(e.Name); err == nil {
					s.opts.Logger.Info("nameserver: autoclean removed an unreachable registration", "name", e.Name, "uri", e.URI)
					if s.opts.cleaned != nil {
						s.opts.cleaned <- e.Name
					}
				}
			}
			delete(downSince, e.Name)
		}
	}
}

// probe reports whether the daemon serving u answers a ping.
func probe(ctx context.Context, u gopyro.URI, timeout time.Duration) bool {
	du := u
	du.Object = gopyro.DaemonID
	p, err := proxy.NewURI(du, proxy.WithConnectTimeout(timeout))
	if err != nil {
		return false
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err = p.Call(ctx, wire.MethodPing)
	// A daemon that answers, even with an error, is alive.
	return err == nil || !errors.Is(err, gopyro.ErrCommunication) && !errors.Is(err, gopyro.ErrTimeout)
}
