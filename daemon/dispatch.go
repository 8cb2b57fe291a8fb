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
	"github.com/smallnest/rpcx/server"
	"github.com/smallnest/rpcx/share"
)

// handle is the rpcx handler of gopyro's one route. It always answers with
// a reply (never an rpcx error) so the caller gets a typed error.
func (d *Daemon) handle(c *server.Context) error {
	md := c.Metadata()
	oneway := md[wire.MetaOneway] == "1"
	gc, _ := c.Get(server.RemoteConnContextKey).(*wire.GuardConn)
	enc := wire.NewEncoder()
	defer enc.Release()            // after c.Write: rpcx copies the reply as it frames it
	direct := gc != nil && !oneway // large replies may skip rpcx's frame copy
	if direct {
		enc.Scatter() // large []byte results go out as they are
	}
	payload, err := d.call(md, c.Payload(), gc, oneway, enc)
	if oneway {
		if err != nil {
			d.cfg.Logger.Debug("daemon: oneway call failed", "object", md[wire.MetaObject], "method", md[wire.MetaMethod], "err", err)
		}
		return nil
	}
	if err != nil {
		if rm, ok := c.Get(share.ResMetaDataKey).(map[string]string); ok {
			rm[wire.MetaError] = "1"
		}
		_ = c.Write(wire.EncodeError(err))
		if gopyro.CodeOf(err) == gopyro.CodeSecurity && gc != nil {
			_ = gc.Close()
		}
		return nil
	}
	segs := enc.Segments()
	if direct && (segs != nil || len(payload) >= directReplySize) {
		// rpcx would copy the payload into a frame buffer first.
		if req, ok := wire.Request(c); ok {
			if segs == nil {
				segs = [][]byte{payload}
			}
			_ = gc.WriteReply(req, segs...)
			return nil
		}
	}
	if segs != nil {
		payload = enc.Raw() // joins the segments
	}
	_ = c.Write(payload)
	return nil
}

// directReplySize is the reply size from which the daemon writes replies
// itself; see wire.GuardConn.WriteReply.
const directReplySize = 256 << 10

// call runs the request and returns its encoded reply, written into enc
// (or, for a batch, a buffer of its own).
func (d *Daemon) call(md map[string]string, payload []byte, gc *wire.GuardConn, oneway bool, enc *wire.Encoder) ([]byte, error) {
	objID, name := md[wire.MetaObject], md[wire.MetaMethod]
	batch := md[wire.MetaBatch] != ""
	fail := func(code gopyro.Code, format string, args ...any) ([]byte, error) {
		op := "call " + name // built on failure only: the call path allocates little
		if batch {
			op = "batch"
		}
		return nil, &gopyro.Error{Code: code, Op: op, URI: objID, Message: fmt.Sprintf(format, args...)}
	}
	if d.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(md[wire.MetaAuth]), []byte(d.cfg.Token)) != 1 {
		return fail(gopyro.CodeSecurity, "missing or wrong token")
	}
	switch d.begin() {
	case errDraining:
		return fail(gopyro.CodeClosed, "daemon is shutting down")
	case errBusy:
		if oneway {
			d.cfg.Logger.Warn("daemon: in-flight limit reached; dropping oneway call", "object", objID, "method", name)
		}
		return fail(gopyro.CodeBusy, "daemon has %d calls in flight (its limit)", d.cfg.MaxInFlight)
	}
	defer d.end()

	d.mu.RLock()
	e := d.objects[objID]
	var cs *connState
	if gc != nil {
		cs = d.sessions[gc]
	}
	d.mu.RUnlock()
	if e == nil {
		return fail(gopyro.CodeNotFound, "unknown object %q", objID)
	}
	if int64(len(payload)) > d.cfg.MaxMessageSize {
		return fail(gopyro.CodeProtocol, "arguments of %d bytes exceed the limit of %d", len(payload), d.cfg.MaxMessageSize)
	}

	ctx := d.ctx
	if cs != nil {
		ctx = cs.ctx // cancelled when the caller disconnects
	}
	if t, ok := wire.ParseTimeout(md[wire.MetaTimeout]); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	info := CallInfo{ObjectID: objID, Method: name, CorrelationID: md[wire.MetaCorrelation], Oneway: oneway}
	if gc != nil {
		info.RemoteAddr = gc.RemoteAddr()
	}
	if cs != nil {
		info.ConnID = cs.id
	}
	if mode := md[wire.MetaBatch]; mode != "" {
		if err := wire.Validate(payload); err != nil {
			return fail(gopyro.CodeProtocol, "malformed batch: %v", err)
		}
		calls, err := wire.DecodeBatch(payload)
		if err != nil {
			return fail(gopyro.CodeProtocol, "malformed batch: %v", err)
		}
		return d.batch(ctx, e, cs, info, calls, mode == wire.BatchStopOnFail)
	}
	return d.callMethod(ctx, e, cs, info, payload, enc)
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
		return fail(gopyro.CodeNotFound, "object %q has no method %q (it has: %s)", objID, name, strings.Join(e.info.names(), ", "))
	}
	opName = m.name
	if err := wire.Validate(payload); err != nil {
		return fail(gopyro.CodeProtocol, "malformed arguments: %v", err)
	}
	// Large []byte arguments share the payload: rpcx reads every request
	// into a buffer of its own and never reuses it (TestRetainedArguments
	// guards this), so a method may even keep them.
	dec, err := wire.NewAliasingDecoder(payload)
	if err != nil {
		return fail(gopyro.CodeProtocol, "malformed arguments: %v", err)
	}
	defer dec.Release()
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
		return nil, &gopyro.Error{Code: gopyro.CodeRemote, Op: "call " + opName, URI: objID, RemoteType: fmt.Sprintf("%T", err),
			Message: "cannot create instance: " + err.Error()}
	}
	args[0] = recv
	out, err := d.invoke(m, args)
	if err == nil {
		err = d.prepareResults(ctx, cs, m, out, endStreams)
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
	if err := enc.EncodeValues(out); err != nil {
		return fail(gopyro.CodeProtocol, "cannot encode the results: %v", err)
	}
	if enc.Segments() != nil {
		return nil, nil // scattered: the handler writes enc.Segments()
	}
	return enc.Raw(), nil
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
	d.mu.RLock()
	inst, ok := cs.instances[e.id]
	d.mu.RUnlock()
	if ok {
		return inst, nil
	}
	inst, err := e.factory(ctx)
	if err != nil {
		return reflect.Value{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := cs.instances[e.id]; ok { // a concurrent first call won
		return cur, nil
	}
	if cs.instances == nil {
		cs.instances = map[string]reflect.Value{}
	}
	cs.instances[e.id] = inst
	return inst, nil
}
