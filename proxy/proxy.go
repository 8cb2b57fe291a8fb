package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// Proxy calls the methods of one remote object. Create it with [New]; it is
// safe for concurrent use. Close it when done.
type Proxy struct {
	uri gopyro.URI // as given to New
	cfg config

	mu       sync.Mutex
	target   gopyro.URI             // resolved PYRO URI; zero until resolved; guarded by mu
	ln       link                   // current connection; guarded by mu
	py       pyroPeer               // the address found to be a Python Pyro daemon; guarded by mu
	closed   bool                   // guarded by mu
	dial     *dialing               // the dial in flight, if any; guarded by mu
	metadata *gopyro.ObjectMetadata // cached by Metadata; guarded by mu
}

// link is a connection to a daemon: gopyro's (cl) or a Python Pyro
// daemon's (pc).
type link struct {
	cl *wire.Client
	pc *pyroClient
}

func (l link) ok() bool { return l.cl != nil || l.pc != nil }

func (l link) broken() bool {
	if l.pc != nil {
		return l.pc.broken.Load()
	}
	return l.cl.Broken()
}

func (l link) close() error {
	if l.pc != nil {
		return l.pc.close()
	}
	return l.cl.Close()
}

// dialing is a dial in flight; the calls that need a connection meanwhile
// wait for it instead of dialling too.
type dialing struct {
	done   chan struct{} // closed when the dial has ended
	cancel context.CancelFunc
	err    error // set before done is closed
}

// New returns a proxy for uri, a PYRO, PYRONAME or PYROMETA URI. It does
// not connect: the first call does.
func New(uri string, opts ...Option) (*Proxy, error) {
	u, err := gopyro.Parse(uri)
	if err != nil {
		return nil, err
	}
	return NewURI(u, opts...)
}

// NewURI is [New] for a parsed URI.
func NewURI(u gopyro.URI, opts ...Option) (*Proxy, error) {
	if u.IsZero() {
		return nil, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "proxy.New", Message: "zero URI"}
	}
	cfg := config{maxMessage: gopyro.DefaultMaxMessageSize}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.err != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "proxy.New", Err: cfg.err}
	}
	if cfg.maxMessage < gopyro.MinMessageSize {
		return nil, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "proxy.New", Message: fmt.Sprintf("max message size must be at least %d bytes", gopyro.MinMessageSize)}
	}
	p := &Proxy{}
	p.init(u, cfg)
	return p, nil
}

// init sets up a new proxy for u.
func (p *Proxy) init(u gopyro.URI, cfg config) {
	p.uri, p.cfg = u, cfg
	if p.cfg.resolver == nil {
		p.cfg.resolver = &NameServerResolver{Options: []Option{WithTLS(p.cfg.tls), WithToken(p.cfg.token), WithConnectTimeout(p.cfg.connectTimeout)}}
	}
	if u.Scheme == gopyro.SchemePyro {
		p.target = u
	}
}

// URI returns the URI the proxy was made with.
func (p *Proxy) URI() gopyro.URI { return p.uri }

// Target returns the PYRO URI the proxy calls, resolving a PYRONAME or
// PYROMETA URI first if needed.
func (p *Proxy) Target(ctx context.Context) (gopyro.URI, error) {
	return p.resolve(ctx)
}

func (p *Proxy) resolve(ctx context.Context) (gopyro.URI, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return gopyro.URI{}, p.errClosed()
	}
	t := p.target
	p.mu.Unlock()
	if !t.IsZero() {
		return t, nil
	}
	t, err := p.cfg.resolver.Resolve(ctx, p.uri)
	if err != nil {
		return gopyro.URI{}, err
	}
	if t.Scheme != gopyro.SchemePyro {
		return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeProtocol, Op: "resolve", URI: p.uri.String(),
			Message: "resolver returned " + t.String() + ", not a PYRO uri"}
	}
	p.mu.Lock()
	p.target = t
	p.mu.Unlock()
	return t, nil
}

func (p *Proxy) errClosed() error {
	return &gopyro.Error{Code: gopyro.CodeClosed, Op: "call", URI: p.uri.String(), Message: "proxy is closed"}
}

// conn returns a live connection, dialling if there is none. A name
// resolved earlier whose address no longer answers is resolved again,
// once: its object may have moved.
func (p *Proxy) conn(ctx context.Context) (link, gopyro.URI, error) {
	p.mu.Lock()
	cached := !p.target.IsZero() && p.uri.Scheme != gopyro.SchemePyro
	p.mu.Unlock()
	ln, t, err := p.conn1(ctx)
	if err != nil && cached && gopyro.CodeOf(err) == gopyro.CodeCommunication && ctx.Err() == nil {
		var dialErr *net.OpError
		if errors.As(err, &dialErr) && dialErr.Op == "dial" {
			return p.conn1(ctx) // the failed dial forgot the target
		}
	}
	return ln, t, err
}

func (p *Proxy) conn1(ctx context.Context) (link, gopyro.URI, error) {
	t, err := p.resolve(ctx)
	if err != nil {
		return link{}, t, err
	}
	for {
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			return link{}, t, p.errClosed()
		case p.ln.ok() && !p.ln.broken():
			ln := p.ln
			p.mu.Unlock()
			return ln, t, nil
		case p.dial != nil: // another call is dialling: wait for it
			dl := p.dial
			p.mu.Unlock()
			select {
			case <-dl.done:
				if c := gopyro.CodeOf(dl.err); dl.err != nil && c != gopyro.CodeCanceled && c != gopyro.CodeTimeout {
					return link{}, t, dl.err
				}
				continue // connected; or the dialling call gave up: try again
			case <-ctx.Done():
				return link{}, t, p.dialError(ctx, t, ctx.Err())
			}
		}
		if p.ln.ok() {
			_ = p.ln.close()
			p.ln = link{}
		}
		// Dial without the lock, so that Close (which cancels the dial)
		// and other calls are not held up by a slow peer.
		dctx, cancel := context.WithCancel(ctx)
		dl := &dialing{done: make(chan struct{}), cancel: cancel}
		p.dial = dl
		proto := p.pyroForLocked(t)
		p.mu.Unlock()
		var ln link
		if proto != nil {
			ln.pc, err = dialPyro(dctx, t, proto, p.cfg)
		} else {
			ln.cl, err = wire.DialClient(dctx, t.Network(), t.Address(), wire.DialOptions{
				TLS: p.cfg.tls, MaxFrame: p.cfg.maxMessage + wire.FrameOverhead, ConnectTimeout: p.cfg.connectTimeout,
			})
		}
		cancel()
		p.mu.Lock()
		p.dial = nil
		switch {
		case err != nil:
			p.forgetTargetLocked()
			if ge, ok := errors.AsType[*gopyro.Error](err); ok {
				ge.Op, ge.URI = "dial", p.where(t) // the Python daemon refused the handshake
				dl.err = ge
			} else {
				dl.err = p.dialError(ctx, t, err)
			}
		case p.closed:
			_ = ln.close()
			dl.err = p.errClosed()
		default:
			p.ln = ln
		}
		close(dl.done)
		p.mu.Unlock()
		if dl.err != nil {
			if gopyro.CodeOf(dl.err) == gopyro.CodeCanceled && ctx.Err() == nil {
				return link{}, t, p.errClosed() // Close cancelled the dial
			}
			return link{}, t, dl.err
		}
		return ln, t, nil
	}
}

// dialError classifies a failed dial.
func (p *Proxy) dialError(ctx context.Context, t gopyro.URI, err error) error {
	code := gopyro.CodeCommunication
	switch {
	case errors.Is(err, context.Canceled):
		code = gopyro.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		code = gopyro.CodeTimeout
	}
	return &gopyro.Error{Code: code, Op: "dial", URI: p.where(t), Err: err}
}

// forgetTargetLocked drops a resolved target so the next call resolves the
// name again (PYRONAME, PYROMETA only).
func (p *Proxy) forgetTargetLocked() {
	if p.uri.Scheme != gopyro.SchemePyro {
		p.target = gopyro.URI{}
	}
}

// dropConn discards cl after a transport failure.
func (p *Proxy) dropConn(cl *wire.Client) { p.dropLink(link{cl: cl}) }

// dropLink discards ln after a transport failure.
func (p *Proxy) dropLink(ln link) {
	p.mu.Lock()
	if p.ln == ln {
		p.ln = link{}
		p.forgetTargetLocked()
	}
	p.mu.Unlock()
	_ = ln.close()
}

// Close closes the connection, and cancels a dial in flight. Calls after
// Close fail with gopyro.ErrClosed.
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.dial != nil {
		p.dial.cancel()
	}
	if p.ln.ok() {
		err := p.ln.close()
		p.ln = link{}
		if errors.Is(err, wire.ErrClientClosed) || errors.Is(err, net.ErrClosed) {
			err = nil
		}
		return err
	}
	return nil
}
