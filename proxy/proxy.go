package proxy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

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
	metadata *gopyro.ObjectMetadata // cached by Metadata; guarded by mu
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
	if cfg.maxMessage < 1024 {
		return nil, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "proxy.New", Message: "max message size must be at least 1024 bytes"}
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, t, p.errClosed()
	}
	if p.cl != nil && !p.cl.Broken() {
		return p.cl, t, nil
	}
	if p.cl != nil {
		_ = p.cl.Close()
		p.cl = nil
	}
	cl, err := wire.DialClient(ctx, t.Network(), t.Address(), wire.DialOptions{
		TLS: p.cfg.tls, MaxFrame: p.cfg.maxMessage + wire.FrameOverhead, ConnectTimeout: p.cfg.connectTimeout,
	})
	if err != nil {
		p.forgetTargetLocked()
		code := gopyro.CodeCommunication
		switch {
		case errors.Is(err, context.Canceled):
			code = gopyro.CodeCanceled
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
			code = gopyro.CodeTimeout
		}
		return nil, t, &gopyro.Error{Code: code, Op: "dial", URI: t.String(), Err: err}
	}
	p.cl = cl
	return cl, t, nil
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

// Close closes the connection. Calls after Close fail with gopyro.ErrClosed.
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
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

type correlationKey struct{}

// WithCorrelationID returns a context whose calls carry id as their
// correlation id (daemon.CallInfo.CorrelationID on the server).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// Call calls method with args and returns its results, to be decoded with
// [Results.Decode]. A remote error is a *gopyro.Error with Remote set.
func (p *Proxy) Call(ctx context.Context, method string, args ...any) (*Results, error) {
	enc := wire.NewEncoder()
	defer enc.Release() // after the send, which writes the bytes out
	enc.Scatter()       // large []byte arguments are written from where they are
	if err := enc.EncodeArray(args...); err != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeArgument, Op: "call " + method, URI: p.uri.String(), Err: err}
	}
	r := request{method: method, segs: enc.Segments()}
	if r.segs == nil {
		r.payload = enc.Raw()
	}
	b, err := p.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return &Results{p: p, method: method, payload: b}, nil
}

// Oneway sends a call without waiting for its reply or learning whether it
// succeeded. It returns once the call was written (or failed to be).
func (p *Proxy) Oneway(ctx context.Context, method string, args ...any) error {
	enc := wire.NewEncoder()
	defer enc.Release()
	if err := enc.EncodeArray(args...); err != nil {
		return &gopyro.Error{Code: gopyro.CodeArgument, Op: "oneway " + method, URI: p.uri.String(), Err: err}
	}
	_, err := p.roundTrip(ctx, method, enc.Raw(), true)
	return err
}

// request is one message to the daemon.
type request struct {
	object  string // "" means the proxy's target object
	method  string
	payload []byte
	segs    [][]byte // instead of payload: pieces sent back to back
	oneway  bool
	batch   string // wire.MetaBatch value; "" for a single call
}

// op names the request in errors.
func (r request) op() string {
	switch {
	case r.batch != "":
		return "batch"
	case r.oneway:
		return "oneway " + r.method
	}
	return "call " + r.method
}

func (p *Proxy) roundTrip(ctx context.Context, method string, payload []byte, oneway bool) ([]byte, error) {
	return p.do(ctx, request{method: method, payload: payload, oneway: oneway})
}

func (p *Proxy) do(ctx context.Context, r request) ([]byte, error) {
	if p.cfg.timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, p.cfg.timeout)
			defer cancel()
		}
	}
	var err error
	for attempt := 0; attempt <= p.cfg.retries; attempt++ {
		var b []byte
		b, err = p.send(ctx, r)
		if err == nil || gopyro.CodeOf(err) != gopyro.CodeCommunication || ctx.Err() != nil {
			return b, err
		}
	}
	return nil, err
}

func (p *Proxy) send(ctx context.Context, r request) ([]byte, error) {
	cl, t, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	md := make(map[string]string, 6)
	md[wire.MetaObject] = t.Object
	if r.object != "" {
		md[wire.MetaObject] = r.object
	}
	md[wire.MetaMethod] = r.method
	if r.batch != "" {
		md[wire.MetaBatch] = r.batch
	}
	if dl, ok := ctx.Deadline(); ok {
		md[wire.MetaTimeout] = wire.FormatTimeout(time.Until(dl))
	}
	if p.cfg.token != "" {
		md[wire.MetaAuth] = p.cfg.token
	}
	if id, ok := ctx.Value(correlationKey{}).(string); ok && id != "" {
		md[wire.MetaCorrelation] = id
	}
	if r.oneway {
		md[wire.MetaOneway] = "1"
	}
	segs := r.segs
	if segs == nil {
		segs = [][]byte{r.payload}
	}
	rep, err := cl.Send(ctx, wire.Call{Meta: md, Payload: segs, Oneway: r.oneway})
	if err != nil {
		return nil, p.transportError(cl, r.op(), t, err)
	}
	if r.oneway {
		return nil, nil
	}
	if rep.Meta[wire.MetaError] == "1" {
		return nil, p.remoteError(wire.DecodeError(rep.Payload), r.op(), t)
	}
	return rep.Payload, nil
}

// remoteError completes an error decoded from a reply.
func (p *Proxy) remoteError(ge *gopyro.Error, op string, t gopyro.URI) *gopyro.Error {
	ge.Op, ge.URI = op, t.String()
	if ge.Code == gopyro.CodeTimeout {
		// The deadline ran out on the daemon's side first: report it
		// as the caller's own deadline, whichever side noticed.
		ge.Err = context.DeadlineExceeded
	}
	if ge.Code == gopyro.CodeNotFound && ge.Remote && p.uri.Scheme != gopyro.SchemePyro {
		// The name may now point at another object: look it up again.
		p.mu.Lock()
		p.forgetTargetLocked()
		p.mu.Unlock()
	}
	return ge
}

func (p *Proxy) transportError(cl *wire.Client, op string, t gopyro.URI, err error) error {
	ge := &gopyro.Error{Op: op, URI: t.String(), Err: err}
	var se wire.ServiceError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		ge.Code = gopyro.CodeTimeout
		ge.Message = "no reply before the deadline"
	case errors.Is(err, context.Canceled):
		ge.Code = gopyro.CodeCanceled
		ge.Message = "call canceled"
	case errors.As(err, &se):
		ge.Code = gopyro.CodeProtocol
		ge.Remote = true
		ge.Err = nil
		if msg, ok := strings.CutPrefix(se.Error(), wire.OversizePrefix); ok {
			ge.Message = "request too large: " + msg
		} else {
			ge.Message = "transport error from the peer: " + se.Error()
		}
		// The daemon drops the connection after such an error.
		p.dropConn(cl)
	default:
		ge.Code = gopyro.CodeCommunication
		ge.Message = "connection failed"
		p.dropConn(cl)
	}
	return ge
}

// Ping calls the built-in daemon object's ping: it proves the daemon
// serving this proxy's object is alive. It uses the proxy's connection.
func (p *Proxy) Ping(ctx context.Context) error {
	_, err := p.callDaemon(ctx, wire.MethodPing)
	return err
}

// callDaemon calls a method of the built-in daemon object of the proxy's
// daemon, on the proxy's connection.
func (p *Proxy) callDaemon(ctx context.Context, method string, args ...any) (*Results, error) {
	enc := wire.NewEncoder()
	defer enc.Release()
	if err := enc.EncodeArray(args...); err != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeArgument, Op: "call " + method, URI: p.uri.String(), Err: err}
	}
	b, err := p.do(ctx, request{object: gopyro.DaemonID, method: method, payload: enc.Raw()})
	if err != nil {
		return nil, err
	}
	return &Results{p: p, method: method, payload: b}, nil
}

// Metadata asks the daemon for the object's metadata and caches it; [Proxy.Bind]
// then checks stub fields against it.
func (p *Proxy) Metadata(ctx context.Context) (gopyro.ObjectMetadata, error) {
	t, err := p.resolve(ctx)
	if err != nil {
		return gopyro.ObjectMetadata{}, err
	}
	res, err := p.callDaemon(ctx, wire.MethodGetMetadata, t.Object)
	if err != nil {
		return gopyro.ObjectMetadata{}, err
	}
	var md gopyro.ObjectMetadata
	if err := res.Decode(&md); err != nil {
		return gopyro.ObjectMetadata{}, err
	}
	p.mu.Lock()
	p.metadata = &md
	p.mu.Unlock()
	return md, nil
}

func (p *Proxy) knownMethod(name string) (known, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.metadata == nil {
		return false, true
	}
	return true, slices.Contains(p.metadata.Methods, name)
}
