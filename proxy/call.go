package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/pyro"
	"github.com/gopyro/gopyro/internal/wire"
)

type correlationKey struct{}

// WithCorrelationID returns a context whose calls carry id as their
// correlation id (daemon.CallInfo.CorrelationID on the server).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// Call calls method with args and returns its results, to be decoded with
// [Results.Decode]. A remote error is a *gopyro.Error with Remote set.
func (p *Proxy) Call(ctx context.Context, method string, args ...any) (*Results, error) {
	if p.knownPyro() { // Python values are made in its own send: no msgpack
		rep, err := p.do(ctx, request{method: method, args: args})
		if err != nil {
			return nil, err
		}
		return rep.results(p, method), nil
	}
	enc := wire.NewEncoder()
	defer enc.Release() // after the send, which writes the bytes out
	enc.Scatter()       // large []byte arguments are written from where they are
	if err := enc.EncodeArray(args...); err != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeArgument, Op: "call " + method, URI: p.uri.String(), Err: err}
	}
	r := request{method: method, segs: enc.Segments(), args: args}
	if r.segs == nil {
		r.payload = enc.Raw()
	}
	rep, err := p.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return rep.results(p, method), nil
}

// Oneway sends a call without waiting for its reply or learning whether it
// succeeded. It returns once the call was written (or failed to be).
func (p *Proxy) Oneway(ctx context.Context, method string, args ...any) error {
	if p.knownPyro() {
		_, err := p.do(ctx, request{method: method, args: args, oneway: true})
		return err
	}
	enc := wire.NewEncoder()
	defer enc.Release()
	if err := enc.EncodeArray(args...); err != nil {
		return &gopyro.Error{Code: gopyro.CodeArgument, Op: "oneway " + method, URI: p.uri.String(), Err: err}
	}
	_, err := p.do(ctx, request{method: method, payload: enc.Raw(), args: args, oneway: true})
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
	args    []any  // the arguments as given, for a Python daemon
	calls   []call // a batch's calls, for a Python daemon
}

// call is one call of a batch.
type call struct {
	method string
	args   []any
}

// reply is a daemon's answer: gopyro's encoded results, or a Python
// daemon's.
type reply struct {
	payload []byte
	py      *pyroReply
	proto   *pyro.Protocol // py's
}

// results wraps a reply to a call of method.
func (rep reply) results(p *Proxy, method string) *Results {
	return &Results{p: p, method: method, payload: rep.payload, py: rep.py, proto: rep.proto}
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

func (p *Proxy) do(ctx context.Context, r request) (reply, error) {
	if p.cfg.timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, p.cfg.timeout)
			defer cancel()
		}
	}
	var err error
	learned, resent := false, false
	for attempt := 0; attempt <= p.cfg.retries; attempt++ {
		var rep reply
		rep, err = p.send(ctx, r)
		if err == errSpeaksPyro && !learned {
			// A Python daemon refused the request without running it:
			// send it again in its protocol (not a retry).
			learned = true
			attempt--
			continue
		}
		if _, notSent := errors.AsType[*wire.NotSentError](err); notSent && !resent && ctx.Err() == nil {
			// The connection had ended (the daemon stopped or restarted)
			// before the request went out: send it on a new one, to a
			// name resolved again (not a retry: nothing ran).
			resent = true
			attempt--
			continue
		}
		if err == nil || gopyro.CodeOf(err) != gopyro.CodeCommunication || ctx.Err() != nil {
			return rep, err
		}
	}
	return reply{}, err
}

func (p *Proxy) send(ctx context.Context, r request) (reply, error) {
	ln, t, err := p.conn(ctx)
	if err != nil {
		return reply{}, err
	}
	if ln.pc != nil {
		return p.sendPyro(ctx, ln.pc, t, r)
	}
	cl := ln.cl
	if r.oneway && !cl.Answered() {
		// A oneway request gets no answer, so a Python daemon's refusal
		// would go unseen: make sure of the peer first. Any answer of a
		// gopyro daemon will do (a busy one refuses the ping).
		if _, err := p.sendWire(ctx, cl, t, request{object: gopyro.DaemonID, method: wire.MethodPing, payload: []byte{0x90}}); err != nil {
			if ge, ok := errors.AsType[*gopyro.Error](err); !ok || !ge.Remote {
				return reply{}, err
			}
		}
	}
	return p.sendWire(ctx, cl, t, r)
}

// sendWire does r on a gopyro daemon.
func (p *Proxy) sendWire(ctx context.Context, cl *wire.Client, t gopyro.URI, r request) (reply, error) {
	if r.payload == nil && r.segs == nil {
		// Made for a Python daemon, and the address turned out not to be
		// one any more: encode the arguments now.
		b, err := wire.EncodeArray(r.args...)
		if err != nil {
			return reply{}, &gopyro.Error{Code: gopyro.CodeArgument, Op: r.op(), URI: p.where(t), Err: err}
		}
		r.payload = b
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
		if pe, ok := errors.AsType[*wire.PyroPeerError](err); ok {
			return reply{}, p.learnPyro(cl, t, pe.Version)
		}
		return reply{}, p.transportError(cl, r.op(), t, err)
	}
	if r.oneway {
		return reply{}, nil
	}
	if rep.Meta[wire.MetaError] == "1" {
		return reply{}, p.remoteError(wire.DecodeError(rep.Payload), r.op(), t)
	}
	return reply{payload: rep.Payload}, nil
}

// remoteError completes an error decoded from a reply.
