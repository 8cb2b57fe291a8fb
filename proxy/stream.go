package proxy

import (
	"context"
	"iter"
	"reflect"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/pyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// streamCloseTimeout bounds the StreamClose call a loop that ended early
// sends (oneway) to free the stream on the daemon.
const streamCloseTimeout = 5 * time.Second

// Stream calls method, which returns a stream on the server (an iter.Seq[T]
// or a channel of T), and returns an iterator over its items. Items arrive
// in chunks, several per round trip (the daemon's StreamChunk), and are
// fetched as the iterator is consumed. Breaking out of the loop closes
// the stream on the server: its iterator's yield returns false and the
// method's context is cancelled. An error ends the iteration as its last
// pair.
//
//	for n, err := range proxy.Stream[int](ctx, p, "Count", 1000000) {
//		if err != nil { return err }
//		...
//	}
//
// Streams are tied to the proxy's connection; if the client vanishes, the
// daemon closes its streams after a linger time (daemon.Config.StreamLinger).
// A stream may be the first result of method only.
//
// A Python daemon's generators (and iterators) are streams too, fetched
// one item per round trip as Pyro's own proxies do.
func Stream[T any](ctx context.Context, p *Proxy, method string, args ...any) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero, v T
		rv := reflect.ValueOf(&v).Elem()
		stream(ctx, p, method, args, func(decode func(reflect.Value) error, err error) bool {
			if err != nil {
				return yield(zero, err)
			}
			v = zero
			if err := decode(rv); err != nil {
				yield(zero, err)
				return false
			}
			return yield(v, nil)
		})
	}
}

// stream calls method and hands each item of the stream it returns to
// yield as a decode function (into a value of the item's type), or an
// error as the last call; yield returns false to stop. However the loop
// ends before the stream does (a break, a bad item, a failed fetch), the
// server's side is closed.
func stream(ctx context.Context, p *Proxy, method string, args []any, yield func(decode func(reflect.Value) error, err error) bool) {
	res, err := p.Call(ctx, method, args...)
	if err != nil {
		yield(nil, err)
		return
	}
	if res.py != nil {
		pyroStream(ctx, p, res, yield)
		return
	}
	chunk, err := res.chunk()
	if err != nil {
		yield(nil, err)
		return
	}
	id := chunk.ID
	open := !chunk.Done
	defer func() {
		if open {
			p.closeStream(id)
		}
	}()
	idx := 0 // the item decode reads: one closure for the whole stream
	decode := func(v reflect.Value) error {
		if err := chunk.Next(idx, v); err != nil {
			return &gopyro.Error{Code: gopyro.CodeArgument, Op: "stream " + method, Err: err}
		}
		return nil
	}
	for {
		for i := range chunk.N {
			idx = i
			if !yield(decode, nil) {
				return
			}
		}
		if chunk.Done {
			open = false
			return
		}
		if chunk, err = p.nextChunk(ctx, id); err != nil {
			if gopyro.CodeOf(err) == gopyro.CodeNotFound {
				open = false // the daemon no longer has it
			}
			yield(nil, err)
			return
		}
		open = !chunk.Done
	}
}

// chunk reads the first result as a stream's first chunk.
func (r *Results) chunk() (*wire.ChunkReader, error) {
	d, err := r.decoder(false)
	if err != nil {
		return nil, err
	}
	defer d.Release()
	if d.Len() < 1 {
		return nil, r.fail(errNotStream)
	}
	c, err := d.ReadChunk()
	if err != nil {
		return nil, r.fail(err)
	}
	return c, nil
}

var errNotStream = &gopyro.Error{Code: gopyro.CodeArgument, Message: "the method returned no stream"}

func (p *Proxy) nextChunk(ctx context.Context, id string) (*wire.ChunkReader, error) {
	payload, err := wire.EncodeArray(id)
	if err != nil {
		return nil, err
	}
	rep, err := p.do(ctx, request{object: gopyro.DaemonID, method: wire.MethodStreamNext, payload: payload})
	if err != nil {
		return nil, err
	}
	return rep.results(p, wire.MethodStreamNext).chunk()
}

// closeStream tells the daemon to close a stream the caller stopped
// reading, without waiting for the answer.
func (p *Proxy) closeStream(id string) {
	payload, err := wire.EncodeArray(id)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), streamCloseTimeout)
	defer cancel()
	_, _ = p.do(ctx, request{object: gopyro.DaemonID, method: wire.MethodStreamClose, payload: payload, oneway: true, args: []any{id}})
}

// pyroStream yields the items of a Python daemon's item stream, asking
// for each with get_next_stream_item until StopIteration; a loop that
// ends early closes the stream (close_stream).
func pyroStream(ctx context.Context, p *Proxy, res *Results, yield func(decode func(reflect.Value) error, err error) bool) {
	id := res.py.stream
	if id == "" {
		yield(nil, &gopyro.Error{Code: gopyro.CodeArgument, Op: "stream " + res.method,
			Message: res.method + " returned " + pyro.Describe(res.py.v) + ", not a generator or iterator"})
		return
	}
	open := true
	defer func() {
		if open {
			p.closeStream(id)
		}
	}()
	for {
		rep, err := p.do(ctx, request{object: gopyro.DaemonID, method: wire.MethodStreamNext, args: []any{id}})
		if err != nil {
			yield(nil, err)
			return
		}
		if rep.py.done {
			open = false
			return
		}
		item := rep.results(p, res.method)
		if !yield(func(v reflect.Value) error { return item.decodeInto([]reflect.Value{v}) }, nil) {
			return
		}
	}
}
