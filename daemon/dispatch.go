package daemon

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// ServeRequest implements wire.Handler: it runs one request and answers
// it (unless it is oneway) with its results or a typed error.
func (d *Daemon) ServeRequest(req *wire.Request, w wire.ReplyWriter) {
	d.hold() // Shutdown closes the connection only once the reply is out
	defer d.release()
	enc := wire.NewEncoder()
	defer enc.Release() // after the reply is written
	if !req.Oneway {
		enc.Scatter() // large []byte results go out as they are
	}
	cs, _ := req.Conn.(*connState)
	if cs != nil {
		cs.active.Add(1)
		defer cs.active.Add(-1)
	}
	payload, err := d.call(req, cs, enc)
	if req.Oneway {
		if gopyro.CodeOf(err) == gopyro.CodeSecurity && cs != nil {
			_ = cs.conn.Close() // as for any call with a wrong token
		}
		if err != nil {
			d.cfg.Logger.Debug("daemon: oneway call failed", "object", req.Object, "method", req.Method, "err", err)
		}
		return
	}
	if err != nil {
		_ = w.Fail(wire.EncodeError(err))
		if gopyro.CodeOf(err) == gopyro.CodeSecurity && cs != nil {
			_ = cs.conn.Close()
		}
		return
	}
	if segs := enc.Segments(); segs != nil {
		_ = w.Reply(segs...)
		return
	}
	_ = w.Reply(enc.One(payload)...)
}

// call runs the request and returns its encoded reply, written into enc
// (or, for a batch, a buffer of its own).
func (d *Daemon) call(req *wire.Request, cs *connState, enc *wire.Encoder) ([]byte, error) {
	objID, name := req.Object, req.Method
	fail := func(code gopyro.Code, format string, args ...any) ([]byte, error) {
		op := "call " + name // built on failure only: the call path allocates little
		if req.Batch != "" {
			op = "batch"
		}
		return nil, &gopyro.Error{Code: code, Op: op, URI: objID, Message: fmt.Sprintf(format, args...)}
	}
	if len(objID) > gopyro.MaxNameLen || len(name) > gopyro.MaxNameLen {
		return nil, &gopyro.Error{Code: gopyro.CodeProtocol, Op: "call",
			Message: fmt.Sprintf("object id of %d bytes or method name of %d bytes (the limit is %d)", len(objID), len(name), gopyro.MaxNameLen)}
	}
	if d.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(req.Token), []byte(d.cfg.Token)) != 1 {
		return fail(gopyro.CodeSecurity, "missing or wrong token")
	}
	r := d.begin()
	if r == errBusy && req.Oneway && !d.cfg.DropOneway {
		// A oneway call is "no reply", not "maybe": it waits for a slot.
		// Few can wait: each holds a place among its connection's
		// requests in hand, and the connection is not read meanwhile.
		r = d.waitSlot()
	}
	switch r {
	case errDraining:
		return fail(gopyro.CodeClosed, "daemon is shutting down")
	case errBusy:
		if req.Oneway {
			d.dropped.Add(1)
			d.dropLog.warn(d.cfg.Logger, "daemon: in-flight limit reached; dropping oneway call (DropOneway)", "object", gopyro.Clip(objID), "method", gopyro.Clip(name))
		}
		return fail(gopyro.CodeBusy, "daemon has %d calls in flight (its limit)", d.cfg.MaxInFlight)
	}
	defer d.end()

	d.mu.RLock()
	e := d.objects[objID]
	d.mu.RUnlock()
	if e == nil {
		return fail(gopyro.CodeNotFound, "unknown object %q", objID)
	}
	if int64(len(req.Payload)) > d.cfg.MaxMessageSize {
		return fail(gopyro.CodeProtocol, "arguments of %d bytes exceed the limit of %d", len(req.Payload), d.cfg.MaxMessageSize)
	}

	ctx := d.ctx
	if cs != nil {
		ctx = cs.ctx // cancelled when the caller disconnects
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	if cs != nil && objID == gopyro.DaemonID {
		ctx = context.WithValue(ctx, connKey{}, cs) // for Cancel
	}
	info := CallInfo{ObjectID: objID, Method: name, CorrelationID: req.Correlation, Oneway: req.Oneway, seq: req.Seq}
	if cs != nil {
		info.RemoteAddr = cs.conn.RemoteAddr()
		info.ConnID = cs.id
	}
	if req.Batch != "" {
		if err := wire.Validate(req.Payload); err != nil {
			return fail(gopyro.CodeProtocol, "malformed batch: %v", err)
		}
		if n := wire.BatchLen(req.Payload); n > wire.MaxBatchCalls {
			return fail(gopyro.CodeProtocol, "a batch of %d calls (the limit is %d)", n, wire.MaxBatchCalls)
		}
		calls, err := wire.DecodeBatch(req.Payload)
		if err != nil {
			return fail(gopyro.CodeProtocol, "malformed batch: %v", err)
		}
		return d.batch(ctx, e, cs, info, calls, req.Batch == wire.BatchStopOnFail)
	}
	return d.callMethod(ctx, e, cs, info, req.Payload, enc)
}

// batch runs calls on e in order and encodes each outcome.
func (d *Daemon) batch(ctx context.Context, e *entry, cs *connState, info CallInfo, calls []wire.BatchCall, stopOnFail bool) ([]byte, error) {
	rs := make([]wire.BatchResult, len(calls))
	var encs []*wire.Encoder
	defer func() {
		for _, enc := range encs {
			enc.Release()
		}
	}()
	failed := false
	for i, c := range calls {
		if failed && stopOnFail {
			rs[i].Status = wire.BatchSkipped
			continue
		}
		info.Method = c.Method
		enc := wire.NewEncoder()
		encs = append(encs, enc)
		b, err := d.callMethod(ctx, e, cs, info, c.Args, enc)
		if err != nil {
			failed = true
			rs[i] = wire.BatchResult{Status: wire.BatchFailed, Data: wire.EncodeError(err)}
			continue
		}
		rs[i] = wire.BatchResult{Status: wire.BatchOK, Data: b}
	}
	b, err := wire.EncodeBatchReply(rs)
	if err != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeProtocol, Op: "batch", URI: e.id, Message: "cannot encode the results: " + err.Error()}
	}
	return b, nil
}

// callMethod runs one call of info.Method on e with the encoded arguments
// payload, and returns the encoded results.
func (d *Daemon) callMethod(ctx context.Context, e *entry, cs *connState, info CallInfo, payload []byte, enc *wire.Encoder) ([]byte, error) {
	objID, name := e.id, info.Method
	opName := name
	fail := func(code gopyro.Code, format string, args ...any) ([]byte, error) {
		return nil, &gopyro.Error{Code: code, Op: "call " + opName, URI: objID, Message: fmt.Sprintf(format, args...)}
	}
	m := e.info.byName[name]
	if m == nil {
		opName = gopyro.Clip(name) // a batch's method names are not bounded before here
		return fail(gopyro.CodeNotFound, "object %q has no method %s (it has: %s)", objID, gopyro.Clip(name), strings.Join(e.info.names(), ", "))
	}
	opName = m.name
	cost, err := wire.ValidateCost(payload)
	if err != nil {
		return fail(gopyro.CodeProtocol, "malformed arguments: %v", err)
	}
	if extra := cost - int64(len(payload)); extra > 0 {
		// The payload's own bytes were charged when it was read; its
		// decoded form may cost many times more.
		if cost > d.budget.Size() {
			return fail(gopyro.CodeProtocol, "arguments of %d bytes would decode to about %d bytes, more than the daemon's memory budget (%d bytes, MaxBytesInFlight)",
				len(payload), cost, d.budget.Size())
		}
		taken, ok := d.budget.TryAcquire(extra)
		if !ok {
			return fail(gopyro.CodeBusy, "the daemon's memory budget for calls in flight is spent; try again")
		}
		defer d.budget.Release(taken)
	}
	// Large []byte arguments share the payload: wire.Request.Payload
	// belongs to the handler (TestRetainedArguments guards this), so a
	// method may even keep them.
	dec, err := wire.NewAliasingDecoder(payload)
	if err != nil {
		return fail(gopyro.CodeProtocol, "malformed arguments: %v", err)
	}
	defer dec.Release()
	out, err := d.runMethod(ctx, e, cs, info, m, dec)
	if err != nil || out == nil {
		return nil, err
	}
	if err := enc.EncodeValues(out); err != nil {
		return fail(gopyro.CodeProtocol, "cannot encode the results: %v", err)
	}
	if enc.Segments() != nil {
		return nil, nil // scattered: the handler writes enc.Segments()
	}
	return enc.Raw(), nil
}

// argSource yields a call's arguments, decoded into the declared types:
// the msgpack decoder, or a Pyro call's converted Python values.
type argSource interface {
	Len() int
	Next(i int, v reflect.Value) error
}

// runMethod checks the arguments' count, decodes them, runs m on e's
// instance and returns its results, streams opened and references
// prepared. A oneway call of a streaming method returns nil results.
func (d *Daemon) runMethod(ctx context.Context, e *entry, cs *connState, info CallInfo, m *method, dec argSource) ([]reflect.Value, error) {
	objID := e.id
	fail := func(code gopyro.Code, format string, args ...any) ([]reflect.Value, error) {
		return nil, &gopyro.Error{Code: code, Op: "call " + m.name, URI: objID, Message: fmt.Sprintf(format, args...)}
	}
	n := dec.Len()
	want := len(m.in)
	if (!m.variadic && n != want) || (m.variadic && n < want-1) {
		atLeast := ""
		if m.variadic {
			atLeast, want = "at least ", want-1
		}
		return fail(gopyro.CodeArgument, "%s takes %s%d argument%s, got %d", m.name, atLeast, want, plural(want), n)
	}

	// A method returning a stream keeps its context until the stream is
	// closed, not just until it returns.
	mctx := ctx
	var endStreams context.CancelFunc
	if m.streams {
		mctx, endStreams = context.WithCancel(d.ctx)
	} else if m.ctx && cs != nil && !info.Oneway && info.seq != 0 {
		// Only a method that takes a context can see its caller cancel.
		var cancel context.CancelFunc
		mctx, cancel = context.WithCancel(mctx)
		cs.track(info.seq, cancel)
		defer cs.untrack(info.seq, cancel)
	}
	if m.ctx || m.streams {
		mctx = context.WithValue(mctx, callInfoKey{}, &info)
	}

	args := make([]reflect.Value, 1, 2+n)
	if m.ctx {
		args = append(args, reflect.ValueOf(mctx))
	}
	for i := range n {
		var t reflect.Type
		if m.variadic && i >= len(m.in)-1 {
			t = m.in[len(m.in)-1].Elem()
		} else {
			t = m.in[i]
		}
		v := reflect.New(t).Elem()
		if err := dec.Next(i, v); err != nil {
			if endStreams != nil {
				endStreams()
			}
			return fail(gopyro.CodeArgument, "%v", err)
		}
		args = append(args, v)
	}

	recv, err := d.instance(ctx, e, cs)
	if err != nil {
		if endStreams != nil {
			endStreams()
		}
		return nil, &gopyro.Error{Code: gopyro.CodeRemote, Op: "call " + m.name, URI: objID, RemoteType: fmt.Sprintf("%T", err),
			Message: "cannot create instance: " + err.Error()}
	}
	args[0] = recv
	out, err := d.invoke(m, args)
	if err == nil {
		err = d.prepareResults(ctx, cs, m, out, endStreams, info.lazy)
		if err == nil && info.Oneway && m.streams {
			// Nobody will read the streams of a oneway call.
			for _, v := range out {
				if c, ok := v.Interface().(*wire.Chunk); ok && !c.Done {
					d.closeStream(c.ID)
				}
			}
			return nil, nil
		}
	} else if endStreams != nil {
		endStreams()
	}
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []reflect.Value{}
	}
	return out, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// invoke calls the method, turning a returned error or a panic into the
// error sent to the caller, and returns the non-error results.
func (d *Daemon) invoke(m *method, args []reflect.Value) (out []reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			ge := &gopyro.Error{Code: gopyro.CodeRemote, Op: "call " + m.name, RemoteType: "panic", Message: fmt.Sprint(r)}
			if re, ok := r.(error); ok {
				ge.RemoteType = fmt.Sprintf("panic(%T)", re)
			}
			stack := debug.Stack()
			if d.cfg.SendStacks {
				ge.Stack = string(stack)
			}
			d.cfg.Logger.Error("daemon: method panicked", "method", m.name, "panic", ge.Message, "stack", string(stack))
			out, err = nil, ge
		}
	}()
	out = m.fn.Call(args)
	if m.hasErr {
		last := out[len(out)-1]
		out = out[:len(out)-1]
		if !last.IsNil() {
			return nil, last.Interface().(error)
		}
	}
	return out, nil
}

// instance returns the receiver for a call on e.
func (d *Daemon) instance(ctx context.Context, e *entry, cs *connState) (reflect.Value, error) {
	switch e.mode {
	case Single:
		return e.inst, nil
	case PerCall:
		return e.factory(ctx)
	}
	if cs == nil {
		return reflect.Value{}, errors.New("session object called without a connection")
	}
	d.connMu.Lock()
	inst, ok := cs.instances[e.id]
	d.connMu.Unlock()
	if ok {
		return inst, nil
	}
	inst, err := e.factory(ctx)
	if err != nil {
		return reflect.Value{}, err
	}
	d.connMu.Lock()
	cur, won := cs.instances[e.id]
	gone := cs.closed
	if !won && !gone {
		if cs.instances == nil {
			cs.instances = map[string]reflect.Value{}
		}
		cs.instances[e.id] = inst
	}
	d.connMu.Unlock()
	switch {
	case gone: // the connection closed while the factory ran
		closeInstance(inst)
		return reflect.Value{}, errors.New("the connection closed")
	case won: // a concurrent first call won
		closeInstance(inst)
		return cur, nil
	}
	return inst, nil
}
