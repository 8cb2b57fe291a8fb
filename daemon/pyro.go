package daemon

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/pyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// A daemon speaks Python Pyro's protocols (Pyro4's 48 and Pyro5's 502) on
// the same listener as gopyro's own: the first byte tells them apart
// (gopyro's rpcx frames start with 0x08, Pyro's with "PYRO"). Python
// clients call the same objects, with their arguments converted to the
// declared Go types (internal/pyro) and Go errors raised as the nearest
// Python exception.

// sniff reads a connection's first byte and hands the connection to the
// protocol it names.
func (d *Daemon) sniff(cs *connState, c net.Conn) {
	if d.cfg.HandshakeTimeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(d.cfg.HandshakeTimeout))
	}
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		_ = c.Close()
		d.connClosed(cs)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if first[0] == 'P' {
		d.servePyro(cs, c, first[0])
		return
	}
	pc := &prefixConn{Conn: c, first: first[0], pending: true}
	if err := d.tr.ServeConn(pc, cs, func() { d.connClosed(cs) }); err != nil {
		d.connClosed(cs) // the transport closed c
	}
}

// prefixConn gives back the byte sniff read before the rest.
type prefixConn struct {
	net.Conn
	first   byte
	pending bool // first not read yet; only the transport's reader reads
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if p.pending && len(b) > 0 {
		p.pending = false
		b[0] = p.first
		return 1, nil
	}
	return p.Conn.Read(b)
}

// pyroConn is one Python client's connection.
type pyroConn struct {
	d      *Daemon
	cs     *connState
	c      net.Conn
	p      *pyro.Protocol
	key    []byte // Pyro4's HMAC key: the daemon's token
	wmu    sync.Mutex
	wbuf   []byte
	hooks  *pyro.Hooks
	oneway sync.WaitGroup
	raw    syscall.RawConn // the socket, to watch for the client going away; nil if none

	watchMu   sync.Mutex
	callStart time.Time     // when the running call began; zero when none; guarded by watchMu
	watcher   chan struct{} // closed when the running call's watcher ended; guarded by watchMu
}

// pyroErrorf makes an error that a Python client sees as class cls.
func pyroErrorf(code gopyro.Code, cls, format string, args ...any) *gopyro.Error {
	return &gopyro.Error{Code: code, RemoteType: cls, Message: fmt.Sprintf(format, args...)}
}

func (d *Daemon) servePyro(cs *connState, c net.Conn, first byte) {
	defer d.connClosed(cs)
	defer c.Close()
	stop := context.AfterFunc(cs.ctx, func() { _ = c.Close() })
	defer stop()
	br := bufio.NewReaderSize(io.MultiReader(strings.NewReader(string(first)), c), 64<<10)
	pc := &pyroConn{d: d, cs: cs, c: c}
	defer pc.oneway.Wait()
	head, err := br.Peek(6)
	if err != nil {
		return
	}
	if pc.p, err = pyro.Detect(head); err != nil {
		pc.connectFail(pyro.Pyro4, 0, 0, err.Error())
		return
	}
	if pc.p == pyro.Pyro4 && d.cfg.Token != "" {
		pc.key = []byte(d.cfg.Token)
	}
	pc.hooks = &pyro.Hooks{NewRef: wire.NewRefValue, RefOf: d.pyroRefOf}
	if sc, ok := netConnOf(c).(syscall.Conn); ok {
		pc.raw, _ = sc.SyscallConn()
		d.addPyroConn(pc)
		defer d.removePyroConn(pc)
	}
	// One goroutine reads, runs and answers: Pyro clients send one request
	// at a time (oneway calls run on their own). A call that runs longer
	// than pyroWatchAfter gets a watcher that notices the client going
	// away and cancels the call (see watch): a hand-off to a reading
	// goroutine for every call cost a fifth of the throughput.
	defer cs.cancel()
	isConnected := false
	for {
		timeout := d.cfg.IdleTimeout
		if !isConnected {
			timeout = d.cfg.HandshakeTimeout
		}
		if timeout > 0 {
			_ = c.SetReadDeadline(time.Now().Add(timeout))
		}
		m, err := pc.p.ReadMessage(br, d.cfg.MaxMessageSize, pc.key)
		if err != nil {
			var se *pyro.SecurityError
			var pe *pyro.ProtocolError
			var tl *pyro.TooLargeError
			if !isConnected && (errors.As(err, &se) || errors.As(err, &pe) || errors.As(err, &tl)) {
				pc.connectFail(pc.p, 0, 0, err.Error())
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				d.cfg.Logger.Debug("daemon: pyro connection dropped", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		switch {
		case m.Type == pyro.MsgPing:
			pc.write(&pyro.Message{Type: pyro.MsgPing, Seq: m.Seq, Serializer: m.Serializer, Data: []byte("pong"), CorrID: m.CorrID})
		case m.Type == pyro.MsgConnect && !isConnected:
			if !pc.connect(m) {
				return
			}
			isConnected = true
		case m.Type == pyro.MsgInvoke && isConnected:
			if !pc.invoke(m) {
				return
			}
		default:
			if !isConnected {
				pc.connectFail(pc.p, m.Seq, 0, fmt.Sprintf("invalid msg type %d received", m.Type))
			}
			return // Pyro drops the connection on a message out of order
		}
	}
}

// pyroWatchAfter is how long a call runs before a watcher looks out for
// its client going away; quicker calls need none. pyroWatchTick is how
// often the daemon looks for such calls.
const (
	pyroWatchAfter = 50 * time.Millisecond
	pyroWatchTick  = 50 * time.Millisecond
)

// netConnOf returns the connection under a TLS one.
func netConnOf(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

// watch runs call. A call still running after pyroWatchAfter gets a
// watcher (started by the daemon's scan, watchPyro): it waits for the
// socket to become readable without reading from it (MSG_PEEK); end of
// file means the client went away, and the connection's calls are
// cancelled. The watcher is stopped before watch returns, so the
// connection's reader is alone again. Quick calls cost two uncontended
// locks: no timer, no goroutine.
func (pc *pyroConn) watch(call func()) {
	if pc.raw == nil {
		call()
		return
	}
	pc.watchMu.Lock()
	pc.callStart = time.Now()
	pc.watchMu.Unlock()
	call()
	pc.watchMu.Lock()
	pc.callStart = time.Time{}
	done := pc.watcher
	pc.watcher = nil
	pc.watchMu.Unlock()
	if done != nil {
		_ = pc.c.SetReadDeadline(time.Unix(1, 0)) // wakes the watcher
		<-done
		_ = pc.c.SetReadDeadline(time.Time{})
	}
}

// maybeWatch starts the watcher of a call running since before cutoff.
func (pc *pyroConn) maybeWatch(cutoff time.Time) {
	pc.watchMu.Lock()
	defer pc.watchMu.Unlock()
	if pc.callStart.IsZero() || pc.watcher != nil || pc.callStart.After(cutoff) {
		return
	}
	done := make(chan struct{})
	pc.watcher = done
	go func() {
		defer close(done)
		gone := false
		_ = pc.raw.Read(func(fd uintptr) bool {
			var b [1]byte
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err == syscall.EAGAIN || err == syscall.EINTR {
				return false // nothing yet: wait until readable
			}
			gone = n == 0 || err != nil
			return true
		})
		if gone {
			pc.cs.cancel()
		}
	}()
}

// addPyroConn counts pc in for the scan of long calls, which runs while
// Python clients are connected.
func (d *Daemon) addPyroConn(pc *pyroConn) {
	d.pyroMu.Lock()
	defer d.pyroMu.Unlock()
	if d.pyroConns == nil {
		d.pyroConns = map[*pyroConn]struct{}{}
	}
	d.pyroConns[pc] = struct{}{}
	if !d.pyroScanning {
		d.pyroScanning = true
		go d.watchPyro()
	}
}

func (d *Daemon) removePyroConn(pc *pyroConn) {
	d.pyroMu.Lock()
	defer d.pyroMu.Unlock()
	delete(d.pyroConns, pc)
}

// watchPyro starts the watchers of long calls until no Python client is
// connected.
func (d *Daemon) watchPyro() {
	t := time.NewTicker(pyroWatchTick)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			d.pyroMu.Lock()
			d.pyroScanning = false
			d.pyroMu.Unlock()
			return
		case now := <-t.C:
			d.pyroMu.Lock()
			if len(d.pyroConns) == 0 {
				d.pyroScanning = false
				d.pyroMu.Unlock()
				return
			}
			for pc := range d.pyroConns {
				pc.maybeWatch(now.Add(-pyroWatchAfter))
			}
			d.pyroMu.Unlock()
		}
	}
}

func (pc *pyroConn) write(m *pyro.Message) bool { return pc.writeAs(pc.p, m) }

func (pc *pyroConn) writeAs(p *pyro.Protocol, m *pyro.Message) bool {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	if p.FlagCorrID != 0 && m.Type != pyro.MsgConnectFail {
		if m.CorrID == ([16]byte{}) {
			_, _ = rand.Read(m.CorrID[:])
		}
		m.Flags |= p.FlagCorrID
	}
	b, err := p.AppendMessage(pc.wbuf[:0], m, pc.key)
	if err != nil {
		pc.d.cfg.Logger.Warn("daemon: cannot frame a pyro reply", "err", err)
		return false
	}
	if pc.d.cfg.WriteTimeout > 0 {
		_ = pc.c.SetWriteDeadline(time.Now().Add(pc.d.cfg.WriteTimeout))
	}
	_, err = pc.c.Write(b)
	if cap(b) <= 1<<20 {
		pc.wbuf = b
	}
	return err == nil
}

// connectFail refuses a connection: the reason as a string, in the
// request's serializer when it is known and marshal otherwise, as Pyro
// does.
func (pc *pyroConn) connectFail(p *pyro.Protocol, seq, ser uint16, reason string) {
	f, err := p.Format(ser)
	if err != nil {
		f, ser = pyro.Marshal, p.SerializerID(pyro.Marshal)
	}
	data, _ := f.Marshal(reason)
	pc.writeAs(p, &pyro.Message{Type: pyro.MsgConnectFail, Seq: seq, Serializer: ser, Data: data})
}

// connect answers MSG_CONNECT.
func (pc *pyroConn) connect(m *pyro.Message) bool {
	f, err := pc.p.Format(m.Serializer)
	if err != nil {
		pc.connectFail(pc.p, m.Seq, 0, err.Error())
		return false
	}
	v, err := f.Unmarshal(m.Data)
	if err != nil {
		pc.connectFail(pc.p, m.Seq, m.Serializer, "invalid handshake data: "+err.Error())
		return false
	}
	req, _ := v.(pyro.Dict)
	if pc.p == pyro.Pyro5 && pc.d.cfg.Token != "" {
		hs, _ := req.Get("handshake")
		if s, _ := hs.(string); s != pc.d.cfg.Token {
			pc.connectFail(pc.p, m.Seq, m.Serializer, "handshake failed: missing or wrong token (set the proxy's _pyroHandshake to the daemon's token)")
			return false
		}
	}
	var resp any = "hello"
	flags := uint16(0)
	if obj := req.Str("object"); obj != "" {
		meta, ok := pc.d.pyroMetadata(obj)
		if !ok {
			pc.connectFail(pc.p, m.Seq, m.Serializer, "unknown object")
			return false
		}
		if pc.p == pyro.Pyro5 || m.Flags&pc.p.FlagMeta != 0 {
			resp = pyro.Dict{{Key: "handshake", Value: "hello"}, {Key: "meta", Value: meta}}
			flags = pc.p.FlagMeta
		}
	}
	data, err := f.Marshal(resp)
	if err != nil {
		return false
	}
	return pc.write(&pyro.Message{Type: pyro.MsgConnectOK, Flags: flags, Seq: m.Seq, Serializer: m.Serializer, Data: data, CorrID: m.CorrID})
}

// pyroNames returns the names by which Python reaches Go method name: the
// Go name, lowerCamel and snake_case.
func pyroNames(name string) []string { return append([]string{name}, aliases(name)...) }

// pyroMetadata is the metadata Pyro proxies want: every name a method
// answers to, oneway methods likewise, and no attributes.
func (d *Daemon) pyroMetadata(id string) (pyro.Dict, bool) {
	d.mu.RLock()
	e, ok := d.objects[id]
	d.mu.RUnlock()
	if !ok {
		return nil, false
	}
	methods, oneway := pyroMethodNames(e)
	var attrs []string
	if a, ok := pyroAttributesOf(e); ok {
		attrs = a.PyroAttributes()
	}
	return pyro.Dict{{Key: "methods", Value: strList(methods)}, {Key: "oneway", Value: strList(oneway)}, {Key: "attrs", Value: strList(attrs)}}, true
}

// PyroAttributes is implemented by an object with attributes that Python
// clients read and set as Pyro properties (proxy.verbose = True): the
// names PyroAttributes lists are in the metadata Pyro proxies get, and
// their reads and writes call PyroGetAttr and PyroSetAttr. The three
// methods are not remote methods themselves. Only objects served as one
// instance (the default mode) have attributes.
type PyroAttributes interface {
	PyroAttributes() []string
	PyroGetAttr(name string) (any, error)
	PyroSetAttr(name string, value any) error
}

var pyroAttributesType = reflect.TypeFor[PyroAttributes]()

var pyroAttributeMethods = map[string]bool{"PyroAttributes": true, "PyroGetAttr": true, "PyroSetAttr": true}

// pyroAttributesOf returns e's instance as PyroAttributes, if it is one.
func pyroAttributesOf(e *entry) (PyroAttributes, bool) {
	if e.mode != Single || !e.inst.IsValid() {
		return nil, false
	}
	a, ok := e.inst.Interface().(PyroAttributes)
	return a, ok
}

// pyroAttribute serves __getattr__ and __setattr__.
func (d *Daemon) pyroAttribute(pc *pyroConn, e *entry, call pyro.Call) (any, error) {
	a, ok := pyroAttributesOf(e)
	var name string
	if len(call.Args) > 0 {
		name, _ = call.Args[0].(string)
	}
	if !ok || !slices.Contains(a.PyroAttributes(), name) {
		return nil, pyroErrorf(gopyro.CodeNotFound, "builtins.AttributeError", "object %q has no attribute %q", call.Object, gopyro.Clip(name))
	}
	if call.Method == "__getattr__" {
		v, err := a.PyroGetAttr(name)
		if err != nil {
			return nil, err
		}
		return pyro.FromGo(pc.p, pc.hooks, reflect.ValueOf(v))
	}
	if len(call.Args) != 2 {
		return nil, pyroErrorf(gopyro.CodeArgument, "builtins.TypeError", "__setattr__ takes 2 arguments (name, value), got %d", len(call.Args))
	}
	return nil, a.PyroSetAttr(name, pyro.Natural(pc.p, call.Args[1]))
}

func pyroMethodNames(e *entry) (methods, oneway []string) {
	ti := pyroInfo(e)
	for _, m := range ti.methods {
		methods = append(methods, pyroNames(m.name)...)
	}
	for _, o := range e.oneway {
		if _, ok := ti.byName[o]; ok {
			oneway = append(oneway, pyroNames(o)...)
		}
	}
	slices.Sort(methods)
	slices.Sort(oneway)
	return methods, oneway
}

// pyroInfo is the method table Python clients see: the facade's when the
// object has one.
func pyroInfo(e *entry) *typeInfo {
	if e.pyro != nil {
		return e.pyro.info
	}
	return e.info
}

func strList(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// pyroRefOf turns references and registered objects in results into
// Python proxies.
func (d *Daemon) pyroRefOf(v reflect.Value) (pyro.Proxied, bool) {
	var u gopyro.URI
	if s, ok := wire.RefURIOf(v); ok {
		pu, err := gopyro.Parse(s)
		if err != nil {
			return pyro.Proxied{}, false
		}
		u = pu
	} else if r, ok := d.refOf(v); ok {
		u = r.URI
	} else {
		return pyro.Proxied{}, false
	}
	o := pyro.Proxied{URI: u}
	d.mu.RLock()
	e, mine := d.objects[u.Object]
	d.mu.RUnlock()
	if mine {
		o.Methods, o.Oneway = pyroMethodNames(e)
	}
	return o, true
}

// invoke answers MSG_INVOKE; false drops the connection.
func (pc *pyroConn) invoke(m *pyro.Message) bool {
	f, err := pc.p.Format(m.Serializer)
	if err != nil {
		return false
	}
	oneway := m.Flags&pyro.FlagOneway != 0
	batch := m.Flags&pyro.FlagBatch != 0
	reply := func(result any, failed error) bool {
		if oneway {
			return true
		}
		flags := m.Flags & pyro.FlagBatch
		var data []byte
		var anns []pyro.Annotation
		var err error
		if failed != nil {
			flags |= pyro.FlagException
			data, err = f.Marshal(pc.p.ExceptionObject(failed))
		} else if st, ok := result.(pyroStream); ok {
			// As Pyro does: an exception (for old clients) flagged as an
			// item stream, whose id is in the STRM annotation.
			flags |= pyro.FlagException | pc.p.FlagStream
			anns = []pyro.Annotation{{Key: "STRM", Value: []byte(st.id)}}
			data, err = f.Marshal(pyro.Dict{{Key: "__class__", Value: pc.p.Name + ".errors.ProtocolError"}, {Key: "__exception__", Value: true},
				{Key: "args", Value: pyro.Tuple{"result of call is an iterator"}}, {Key: "attributes", Value: pyro.Dict{{Key: "_pyroTraceback", Value: nil}}}})
		} else if data, err = f.Marshal(result); err != nil {
			flags |= pyro.FlagException
			data, err = f.Marshal(pc.p.ExceptionObject(pyroErrorf(gopyro.CodeProtocol, pc.p.Name+".errors.SerializeError", "cannot serialize the result: %v", err)))
		}
		if err != nil {
			return false
		}
		return pc.write(&pyro.Message{Type: pyro.MsgResult, Flags: flags, Seq: m.Seq, Serializer: m.Serializer, Data: data, CorrID: m.CorrID, Annotations: anns})
	}
	call, err := f.DecodeCall(m.Data)
	if err != nil {
		return reply(nil, pyroErrorf(gopyro.CodeProtocol, pc.p.Name+".errors.SerializeError", "%v", err))
	}
	run := func() (any, error) {
		if batch || call.Method == "<batch>" {
			return pc.batch(call)
		}
		return pc.d.pyroCall(pc, call, oneway)
	}
	if oneway {
		pc.oneway.Add(1)
		go func() {
			defer pc.oneway.Done()
			if _, err := run(); err != nil {
				pc.d.cfg.Logger.Debug("daemon: oneway pyro call failed", "object", call.Object, "method", call.Method, "err", err)
			}
		}()
		return true
	}
	var result any
	pc.d.hold() // Shutdown closes the connection only once the reply is out
	defer pc.d.release()
	pc.watch(func() { result, err = run() })
	return reply(result, err)
}

// batch runs a "<batch>" call: its params are [method, args, kwargs]
// triples. The results list stops at the first exception, which is
// wrapped as Pyro's _ExceptionWrapper.
func (pc *pyroConn) batch(call pyro.Call) (any, error) {
	if len(call.Args) > wire.MaxBatchCalls {
		return nil, pyroErrorf(gopyro.CodeProtocol, "builtins.ValueError", "a batch of %d calls (the limit is %d)", len(call.Args), wire.MaxBatchCalls)
	}
	wrapper := "Pyro4.futures._ExceptionWrapper"
	if pc.p == pyro.Pyro5 {
		wrapper = "Pyro5.core._ExceptionWrapper"
	}
	results := []any{}
	for _, c := range call.Args {
		parts, _ := c.([]any)
		if t, ok := c.(pyro.Tuple); ok {
			parts = t
		}
		if len(parts) != 3 {
			return nil, pyroErrorf(gopyro.CodeProtocol, pc.p.Name+".errors.ProtocolError", "a batched call is [method, args, kwargs], got %s", pyro.Describe(c))
		}
		method, _ := parts[0].(string)
		sub := pyro.Call{Object: call.Object, Method: method}
		switch a := parts[1].(type) {
		case []any:
			sub.Args = a
		case pyro.Tuple:
			sub.Args = a
		}
		sub.Kwargs, _ = parts[2].(pyro.Dict)
		r, err := pc.d.pyroCall(pc, sub, false)
		if st, ok := r.(pyroStream); ok {
			pc.d.closeStream(st.id)
			err = pyroErrorf(gopyro.CodeUnsupported, "builtins.NotImplementedError", "%s returns a stream, which a batch cannot carry", method)
		}
		if err != nil {
			results = append(results, pyro.Dict{{Key: "__class__", Value: wrapper}, {Key: "exception", Value: pc.p.ExceptionObject(err)}})
			break
		}
		results = append(results, r)
	}
	return results, nil
}

// pyroArgs feeds a Python call's arguments to runMethod.
type pyroArgs struct {
	pc   *pyroConn
	args []any
}

func (a *pyroArgs) Len() int { return len(a.args) }

func (a *pyroArgs) Next(i int, v reflect.Value) error {
	if err := pyro.Assign(a.pc.p, a.pc.hooks, a.args[i], v); err != nil {
		return fmt.Errorf("argument %d (%s): %v", i+1, v.Type(), err)
	}
	return nil
}

// pyroCall runs one Python call on a registered object.
func (d *Daemon) pyroCall(pc *pyroConn, call pyro.Call, oneway bool) (any, error) {
	if len(call.Object) > gopyro.MaxNameLen || len(call.Method) > gopyro.MaxNameLen {
		return nil, pyroErrorf(gopyro.CodeProtocol, pc.p.Name+".errors.ProtocolError", "object id or method name too long")
	}
	switch r := d.begin(); r {
	case errDraining:
		return nil, pyroErrorf(gopyro.CodeClosed, pc.p.Name+".errors.CommunicationError", "daemon is shutting down")
	case errBusy:
		return nil, pyroErrorf(gopyro.CodeBusy, "builtins.RuntimeError", "daemon has %d calls in flight (its limit)", d.cfg.MaxInFlight)
	}
	defer d.end()
	d.mu.RLock()
	e := d.objects[call.Object]
	d.mu.RUnlock()
	if e == nil {
		return nil, pyroErrorf(gopyro.CodeNotFound, pc.p.Name+".errors.DaemonError", "unknown object")
	}
	if call.Object == gopyro.DaemonID && (call.Method == "get_next_stream_item" || call.Method == "close_stream") {
		return d.pyroStreamCall(pc, call)
	}
	if call.Object == gopyro.DaemonID && (call.Method == "get_metadata" || call.Method == "getMetadata") {
		if len(call.Args) != 1 {
			return nil, pyroErrorf(gopyro.CodeArgument, "builtins.TypeError", "get_metadata() takes 1 argument (the object id), got %d", len(call.Args))
		}
		id, _ := call.Args[0].(string)
		meta, ok := d.pyroMetadata(id)
		if !ok {
			return nil, pyroErrorf(gopyro.CodeNotFound, pc.p.Name+".errors.DaemonError", "unknown object")
		}
		return meta, nil
	}
	ti := pyroInfo(e)
	m := ti.byName[call.Method]
	if m == nil {
		if call.Method == "__getattr__" || call.Method == "__setattr__" {
			return d.pyroAttribute(pc, e, call)
		}
		return nil, pyroErrorf(gopyro.CodeNotFound, "builtins.AttributeError", "object %q has no method %s (it has: %s)", call.Object, gopyro.Clip(call.Method), strings.Join(ti.names(), ", "))
	}
	if m.streams && len(m.outKinds) != 1 {
		return nil, pyroErrorf(gopyro.CodeUnsupported, "builtins.NotImplementedError", "%s returns a stream and other results; a Pyro client takes a stream only as the one result", m.name)
	}
	args, err := pyroPositional(m, call)
	if err != nil {
		return nil, err
	}
	ctx := pc.cs.ctx
	info := CallInfo{ObjectID: e.id, Method: m.name, Oneway: oneway, RemoteAddr: pc.c.RemoteAddr(), ConnID: pc.cs.id, lazy: true}
	target := e
	if e.pyro != nil {
		target = e.pyro
	}
	out, err := d.runMethod(ctx, target, pc.cs, info, m, &pyroArgs{pc: pc, args: args})
	if err != nil {
		if ge, ok := errors.AsType[*gopyro.Error](err); ok && ge.Code == gopyro.CodeArgument && ge.RemoteType == "" && strings.Contains(ge.Message, " takes ") {
			ge.RemoteType = "builtins.TypeError"
		}
		return nil, err
	}
	if m.streams && len(out) == 1 {
		if c, ok := out[0].Interface().(*wire.Chunk); ok {
			if c.Done { // a nil iterator or channel: no items
				return []any{}, nil
			}
			return pyroStream{id: c.ID}, nil
		}
	}
	vals := make([]any, len(out))
	for i, v := range out {
		x, err := pyro.FromGo(pc.p, pc.hooks, v)
		if err != nil {
			return nil, pyroErrorf(gopyro.CodeProtocol, pc.p.Name+".errors.SerializeError", "result %d of %s: %v", i+1, m.name, err)
		}
		vals[i] = x
	}
	switch len(vals) {
	case 0:
		return nil, nil
	case 1:
		return vals[0], nil
	}
	return pyro.Tuple(vals), nil
}

// pyroPositional folds keyword arguments into the positional list: they
// (and positional arguments beyond the others) fill the method's last
// parameter when it is a struct or a map, as Python's keyword arguments.
func pyroPositional(m *method, call pyro.Call) ([]any, error) {
	n := len(m.in)
	var last reflect.Type
	if n > 0 && !m.variadic {
		last = m.in[n-1]
		for last.Kind() == reflect.Pointer {
			last = last.Elem()
		}
	}
	kwStruct := last != nil && last.Kind() == reflect.Struct && !pyro.IsValueStruct(last)
	switch {
	case kwStruct && (len(call.Kwargs) > 0 || len(call.Args) != n || !isDict(call.Args[n-1])):
		// The struct takes keyword arguments, and the positional ones
		// beyond the others, in field order; it may be left out.
		fields := pyro.StructFieldNames(last)
		if len(call.Args) < n-1 {
			return nil, kwargsError(m, call)
		}
		extra := call.Args[n-1:]
		if len(extra) > len(fields) {
			return nil, pyroErrorf(gopyro.CodeArgument, "builtins.TypeError", "%s() takes at most %d positional arguments (%d given)", m.name, n-1+len(fields), len(call.Args))
		}
		kw := pyro.Dict{}
		for i, x := range extra {
			kw = append(kw, pyro.Item{Key: fields[i], Value: x})
		}
		kw = append(kw, call.Kwargs...)
		return append(slices.Clone(call.Args[:n-1]), kw), nil
	case len(call.Kwargs) == 0:
		return call.Args, nil // runMethod checks the count
	case last != nil && last.Kind() == reflect.Map && last.Key().Kind() == reflect.String && len(call.Args) == n-1:
		return append(slices.Clone(call.Args), call.Kwargs), nil
	}
	return nil, kwargsError(m, call)
}

func kwargsError(m *method, call pyro.Call) error {
	if len(call.Kwargs) == 0 {
		return pyroErrorf(gopyro.CodeArgument, "builtins.TypeError", "%s() takes %d positional argument%s but %d were given", m.name, len(m.in), plural(len(m.in)), len(call.Args))
	}
	names := make([]string, len(call.Kwargs))
	for i, it := range call.Kwargs {
		names[i], _ = it.Key.(string)
	}
	return pyroErrorf(gopyro.CodeArgument, "builtins.TypeError", "%s() got unexpected keyword argument%s %s (a Go method takes keyword arguments only in a struct or map as its last parameter)",
		m.name, plural(len(names)), strings.Join(names, ", "))
}

func isDict(v any) bool {
	_, ok := v.(pyro.Dict)
	return ok
}

// pyroStream is the result of a call that returned a stream: the Python
// client fetches its items one by one (get_next_stream_item).
type pyroStream struct{ id string }

// pyroStreamCall serves Pyro's stream calls on the daemon object:
// get_next_stream_item (an item, or StopIteration at the end) and
// close_stream.
func (d *Daemon) pyroStreamCall(pc *pyroConn, call pyro.Call) (any, error) {
	if len(call.Args) != 1 {
		return nil, pyroErrorf(gopyro.CodeArgument, "builtins.TypeError", "%s() takes 1 argument (the stream id), got %d", call.Method, len(call.Args))
	}
	id, _ := call.Args[0].(string)
	if call.Method == "close_stream" {
		d.closeStream(id)
		return nil, nil
	}
	s, ok := d.fetchStream(id, pc.cs.id)
	if !ok {
		return nil, pyroErrorf(gopyro.CodeNotFound, pc.p.Name+".errors.PyroError", "item stream terminated")
	}
	item, ok, err := d.nextItem(pc.cs.ctx, s)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, &gopyro.Error{Code: gopyro.CodeNotFound, RemoteType: "builtins.StopIteration"}
	}
	v, err := pyro.FromGo(pc.p, pc.hooks, reflect.ValueOf(item))
	if err != nil {
		return nil, pyroErrorf(gopyro.CodeProtocol, pc.p.Name+".errors.SerializeError", "a stream item: %v", err)
	}
	return v, nil
}
