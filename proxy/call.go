package proxy

import (
	"context"
	"time"

	"github.com/gopyro/gopyro"
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
