package proxy

import (
	"context"
	"errors"
	"fmt"
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
	cl       *wire.Client           // current connection; guarded by mu
	closed   bool                   // guarded by mu
	dial     *dialing               // the dial in flight, if any; guarded by mu
	metadata *gopyro.ObjectMetadata // cached by Metadata; guarded by mu
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

// conn returns a live connection, dialling if there is none.
func (p *Proxy) conn(ctx context.Context) (*wire.Client, gopyro.URI, error) {
	t, err := p.resolve(ctx)
	if err != nil {
		return nil, t, err
	}
	for {
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			return nil, t, p.errClosed()
		case p.cl != nil && !p.cl.Broken():
			cl := p.cl
			p.mu.Unlock()
			return cl, t, nil
		case p.dial != nil: // another call is dialling: wait for it
			dl := p.dial
			p.mu.Unlock()
			select {
			case <-dl.done:
				if c := gopyro.CodeOf(dl.err); dl.err != nil && c != gopyro.CodeCanceled && c != gopyro.CodeTimeout {
					return nil, t, dl.err
				}
				continue // connected; or the dialling call gave up: try again
			case <-ctx.Done():
				return nil, t, p.dialError(ctx, t, ctx.Err())
			}
		}
		if p.cl != nil {
			_ = p.cl.Close()
			p.cl = nil
		}
		// Dial without the lock, so that Close (which cancels the dial)
		// and other calls are not held up by a slow peer.
		dctx, cancel := context.WithCancel(ctx)
		dl := &dialing{done: make(chan struct{}), cancel: cancel}
		p.dial = dl
		p.mu.Unlock()
		cl, err := wire.DialClient(dctx, t.Network(), t.Address(), wire.DialOptions{
			TLS: p.cfg.tls, MaxFrame: p.cfg.maxMessage + wire.FrameOverhead, ConnectTimeout: p.cfg.connectTimeout,
		})
		cancel()
		p.mu.Lock()
		p.dial = nil
		switch {
		case err != nil:
			p.forgetTargetLocked()
			dl.err = p.dialError(ctx, t, err)
		case p.closed:
			_ = cl.Close()
			dl.err = p.errClosed()
		default:
			p.cl = cl
		}
		close(dl.done)
		p.mu.Unlock()
		if dl.err != nil {
			if gopyro.CodeOf(dl.err) == gopyro.CodeCanceled && ctx.Err() == nil {
				return nil, t, p.errClosed() // Close cancelled the dial
			}
			return nil, t, dl.err
		}
		return cl, t, nil
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
	return &gopyro.Error{Code: code, Op: "dial", URI: t.String(), Err: err}
}

// forgetTargetLocked drops a resolved target so the next call resolves the
// name again (PYRONAME, PYROMETA only).
func (p *Proxy) forgetTargetLocked() {
	if p.uri.Scheme != gopyro.SchemePyro {
		p.target = gopyro.URI{}
	}
}

// dropConn discards cl after a transport failure.
func (p *Proxy) dropConn(cl *wire.Client) {
	p.mu.Lock()
	if p.cl == cl {
		p.cl = nil
		p.forgetTargetLocked()
	}
	p.mu.Unlock()
	_ = cl.Close()
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
	if p.cl != nil {
		err := p.cl.Close()
		p.cl = nil
		if errors.Is(err, wire.ErrClientClosed) {
			err = nil
		}
		return err
	}
	return nil
}
