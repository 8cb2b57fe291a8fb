package proxy

import (
	"context"
	"errors"
	"strings"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/pyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// Batch collects calls on one object to send in one round trip. The daemon
// runs them in order, one after the other, and reports each call's result
// or error separately. A Batch is not safe for concurrent use.
//
//	b := p.Batch()
//	b.Call("Deposit", "Meeta", 50)
//	b.Call("Balance", "Meeta")
//	res, err := b.Run(ctx) // err: the batch as a whole failed
//	var balance float64
//	err = res[1].Decode(&balance)
type Batch struct {
	p     *Proxy
	calls []wire.BatchCall
	args  []call // the same calls with their arguments as given, for a Python daemon
	err   error
}

// BatchResult is the outcome of one call of a batch.
type BatchResult struct {
	// Results holds the call's results when Err is nil.
	*Results
	// Err is the call's error: a remote error, or ErrSkipped when an
	// earlier call failed and the batch was run with StopOnError.
	Err error
}

// Decode decodes the call's results, or returns its error.
func (r BatchResult) Decode(ptrs ...any) error {
	if r.Err != nil {
		return r.Err
	}
	return r.Results.Decode(ptrs...)
}

// ErrSkipped is the error of a batch call that did not run because an
// earlier call failed (see [StopOnError]): errors.Is(err, proxy.ErrSkipped).
// It is a constant, so no caller can change it.
const ErrSkipped = skippedError("proxy: not run: an earlier call of the batch failed")

// skippedError is the type of ErrSkipped.
type skippedError string

func (e skippedError) Error() string { return string(e) }

// BatchOption changes how a batch runs.
type BatchOption func(*batchConfig)

type batchConfig struct{ stop bool }

// StopOnError stops the batch at the first call that fails; the calls
// after it are not run and report ErrSkipped.
func StopOnError() BatchOption { return func(c *batchConfig) { c.stop = true } }

// Batch returns an empty batch of calls on p's object.
func (p *Proxy) Batch() *Batch { return &Batch{p: p} }

// Call adds a call of method with args. An argument that cannot be encoded
// makes Run fail.
func (b *Batch) Call(method string, args ...any) {
	payload, err := wire.EncodeArray(args...)
	if err != nil && b.err == nil {
		b.err = &gopyro.Error{Code: gopyro.CodeArgument, Op: "batch " + method, URI: b.p.uri.String(), Err: err}
	}
	b.calls = append(b.calls, wire.BatchCall{Method: method, Args: payload})
	b.args = append(b.args, call{method: method, args: args})
}

// Len returns the number of calls added.
func (b *Batch) Len() int { return len(b.calls) }

// Run sends the calls in one message and returns one result per call, in
// order. Its error is for the batch as a whole (a lost connection, an
// unknown object, a batch over the size limit); the calls' own errors are
// in the results. A Python daemon always stops a batch at the first call
// that fails, as if StopOnError were given.
func (b *Batch) Run(ctx context.Context, opts ...BatchOption) ([]BatchResult, error) {
	payload, mode, err := b.encode(opts)
	if err != nil {
		return nil, err
	}
	rep, err := b.p.do(ctx, request{method: wire.BatchMethod, payload: payload, batch: mode, calls: b.args})
	if err != nil {
		return nil, err
	}
	if rep.py != nil {
		return b.pyroResults(ctx, rep)
	}
	rs, err := wire.DecodeBatchReply(rep.payload, len(b.calls))
	if err != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeProtocol, Op: "batch", URI: b.p.uri.String(), Message: "malformed batch reply", Err: err}
	}
	t, _ := b.p.resolve(ctx)
	out := make([]BatchResult, len(rs))
	for i, r := range rs {
		method := b.calls[i].Method
		switch r.Status {
		case wire.BatchOK:
			out[i].Results = &Results{p: b.p, method: method, payload: r.Data}
		case wire.BatchFailed:
			out[i].Err = b.p.remoteError(wire.DecodeError(r.Data), "call "+method, t)
		default:
			out[i].Err = ErrSkipped
		}
	}
	return out, nil
}

// Oneway sends the calls without waiting: the daemon runs them in order
// and nobody learns how they went.
func (b *Batch) Oneway(ctx context.Context, opts ...BatchOption) error {
	payload, mode, err := b.encode(opts)
	if err != nil {
		return err
	}
	_, err = b.p.do(ctx, request{method: wire.BatchMethod, payload: payload, batch: mode, oneway: true, calls: b.args})
	return err
}

func (b *Batch) encode(opts []BatchOption) ([]byte, string, error) {
	if b.err != nil {
		return nil, "", b.err
	}
	if len(b.calls) == 0 {
		return nil, "", &gopyro.Error{Code: gopyro.CodeInvalid, Op: "batch", Message: "empty batch"}
	}
	var c batchConfig
	for _, o := range opts {
		o(&c)
	}
	mode := wire.BatchAll
	if c.stop {
		mode = wire.BatchStopOnFail
	}
	payload, err := wire.EncodeBatch(b.calls)
	if err != nil {
		return nil, "", errors.Join(&gopyro.Error{Code: gopyro.CodeArgument, Op: "batch"}, err)
	}
	return payload, mode, nil
}

// pyroResults reads a Python daemon's batch result: a list of the calls'
// results up to the first that failed, whose exception comes wrapped (a
// class dict named _ExceptionWrapper).
func (b *Batch) pyroResults(ctx context.Context, rep reply) ([]BatchResult, error) {
	items, ok := rep.py.v.([]any)
	if t, isTuple := rep.py.v.(pyro.Tuple); isTuple {
		items, ok = t, true
	}
	if !ok || len(items) > len(b.calls) {
		return nil, &gopyro.Error{Code: gopyro.CodeProtocol, Op: "batch", URI: b.p.uri.String(), Message: "malformed batch reply: " + pyro.Describe(rep.py.v)}
	}
	t, _ := b.p.resolve(ctx)
	out := make([]BatchResult, len(b.calls))
	for i := range out {
		method := b.calls[i].Method
		if i >= len(items) {
			out[i].Err = ErrSkipped
			continue
		}
		if d, ok := items[i].(pyro.Dict); ok && strings.HasSuffix(d.Class(), "._ExceptionWrapper") {
			exc, _ := d.Get("exception")
			out[i].Err = b.p.remoteError(rep.proto.Error(exc), "call "+method, t)
			continue
		}
		out[i].Results = reply{py: &pyroReply{v: items[i]}, proto: rep.proto}.results(b.p, method)
	}
	return out, nil
}
