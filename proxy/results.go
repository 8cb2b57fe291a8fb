package proxy

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/pyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// Results holds the results of a call, still encoded.
type Results struct {
	p       *Proxy // the proxy that made the call, for references
	method  string
	payload []byte
	py      *pyroReply     // instead of payload: a Python daemon's result
	proto   *pyro.Protocol // py's
}

// fail reports results that do not fit the types asked for.
func (r *Results) fail(err error) error {
	return &gopyro.Error{Code: gopyro.CodeArgument, Op: "decode results of " + r.method, Err: err}
}

// malformed reports a reply that is not a valid encoding of results: the
// peer broke the protocol.
func (r *Results) malformed(err error) error {
	return &gopyro.Error{Code: gopyro.CodeProtocol, Op: "decode results of " + r.method, Message: "malformed reply", Err: err}
}

// decoder validates the payload and starts decoding it; aliasing lets
// large []byte results share the payload (it is never reused).
func (r *Results) decoder(aliasing bool) (*wire.Decoder, error) {
	if err := wire.Validate(r.payload); err != nil {
		return nil, r.malformed(err)
	}
	newDecoder := wire.NewDecoder
	if aliasing {
		newDecoder = wire.NewAliasingDecoder
	}
	d, err := newDecoder(r.payload)
	if err != nil {
		return nil, r.malformed(err)
	}
	d.Results()
	return d, nil
}

// Len returns the number of results. A Python method has one result
// (several are a tuple: see Decode).
func (r *Results) Len() (int, error) {
	if r.py != nil {
		return 1, nil
	}
	d, err := r.decoder(false)
	if err != nil {
		return 0, err
	}
	defer d.Release()
	return d.Len(), nil
}

// Decode decodes the results into ptrs, in order, converting numbers to the
// pointed-to types with range checks. Fewer pointers than results leaves
// the rest undecoded; more is an error. The result of a Python method is
// one value; when it is a tuple (or list), several pointers take its items
// in order, as Python's `a, b = f()` does.
func (r *Results) Decode(ptrs ...any) error {
	vals := make([]reflect.Value, len(ptrs))
	for i, p := range ptrs {
		v := reflect.ValueOf(p)
		if v.Kind() != reflect.Pointer || v.IsNil() {
			return r.fail(fmt.Errorf("Decode argument %d must be a non-nil pointer, not %T", i, p))
		}
		vals[i] = v.Elem()
	}
	return r.decodeInto(vals)
}

func (r *Results) decodeInto(vals []reflect.Value) error {
	if r.py != nil {
		return r.decodePyro(vals)
	}
	d, err := r.decoder(true)
	if err != nil {
		return err
	}
	defer d.Release()
	if len(vals) > d.Len() {
		return r.fail(fmt.Errorf("%s returned %d result(s), want %d", r.method, d.Len(), len(vals)))
	}
	for i, v := range vals {
		if err := d.Next(i, v); err != nil {
			return r.fail(err)
		}
	}
	adopt(r.p, vals)
	return nil
}

// Values decodes the results into plain Go values: integers as int64,
// floats as float64, strings, []byte, []any, map[string]any, and object
// references as gopyro.URI (decode into a *Proxy to get a proxy).
func (r *Results) Values() ([]any, error) {
	if r.py != nil {
		return []any{pyro.Natural(r.proto, r.py.v)}, nil
	}
	d, err := r.decoder(false)
	if err != nil {
		return nil, err
	}
	defer d.Release()
	out := make([]any, d.Len())
	for i := range out {
		if out[i], err = d.NextInterface(); err != nil {
			return nil, r.fail(err)
		}
	}
	return out, nil
}

// Call calls method on p and decodes its first result as a T. It is the
// short form of the common one-result case:
//
//	greeting, err := proxy.Call[string](ctx, p, "Greet", "Ada")
func Call[T any](ctx context.Context, p *Proxy, method string, args ...any) (T, error) {
	var v T
	res, err := p.Call(ctx, method, args...)
	if err != nil {
		return v, err
	}
	err = res.Decode(&v)
	return v, err
}

// Future is the pending result of [Proxy.Go].
type Future struct {
	done chan struct{}
	res  *Results
	err  error
}

// Go starts a call and returns at once; the call runs until it completes or
// ctx is done.
func (p *Proxy) Go(ctx context.Context, method string, args ...any) *Future {
	f := &Future{done: make(chan struct{})}
	var payload []byte
	var err error
	if !p.knownPyro() {
		payload, err = wire.EncodeArray(args...)
	}
	if err != nil {
		f.err = &gopyro.Error{Code: gopyro.CodeArgument, Op: "call " + method, URI: p.uri.String(), Err: err}
		close(f.done)
		return f
	}
	go func() {
		defer close(f.done)
		rep, err := p.do(ctx, request{method: method, payload: payload, args: args})
		if err != nil {
			f.err = err
			return
		}
		f.res = rep.results(p, method)
	}()
	return f
}

// Done is closed when the call has completed.
func (f *Future) Done() <-chan struct{} { return f.done }

// Wait waits for the call (or for ctx) and returns its results.
func (f *Future) Wait(ctx context.Context) (*Results, error) {
	select {
	case <-f.done:
		return f.res, f.err
	case <-ctx.Done():
		code := gopyro.CodeTimeout
		if errors.Is(ctx.Err(), context.Canceled) {
			code = gopyro.CodeCanceled
		}
		return nil, &gopyro.Error{Code: code, Op: "wait", Err: ctx.Err()}
	}
}

// decodePyro decodes a Python method's result into vals: the value into
// one, a tuple's (or list's) items into several.
func (r *Results) decodePyro(vals []reflect.Value) error {
	v := r.py.v
	if r.py.stream != "" {
		return r.fail(fmt.Errorf("%s returns a stream (a Python generator): read it with proxy.Stream", r.method))
	}
	items := []any{v}
	if len(vals) > 1 {
		switch x := v.(type) {
		case pyro.Tuple:
			items = x
		case []any:
			items = x
		}
		if len(items) < len(vals) {
			return r.fail(fmt.Errorf("%s returned %d value(s), want %d", r.method, len(items), len(vals)))
		}
	}
	for i, dst := range vals {
		if err := pyro.Assign(r.proto, pyroHooks, items[i], dst); err != nil {
			what := "the result"
			if len(vals) > 1 {
				what = fmt.Sprintf("result %d", i+1)
			}
			return r.fail(fmt.Errorf("%s (%s): %w", what, dst.Type(), err))
		}
	}
	adopt(r.p, vals)
	return nil
}
