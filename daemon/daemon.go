package daemon

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
	"github.com/smallnest/rpcx/server"
)

// InstanceMode says which instance of a registered type serves a call.
type InstanceMode uint8

const (
	// Single: one registered instance serves every call (concurrently).
	Single InstanceMode = iota
	// Session: one instance per client connection, made by the factory on
	// the connection's first call and dropped when it closes (its Close
	// method, if it has one, is called).
	Session
	// PerCall: a fresh instance for every call.
	PerCall
)

func (m InstanceMode) String() string {
	switch m {
	case Single:
		return "single"
	case Session:
		return "session"
	case PerCall:
		return "percall"
	}
	return fmt.Sprintf("InstanceMode(%d)", m)
}

// entry is one registered object.
type entry struct {
	id      string
	mode    InstanceMode
	inst    reflect.Value // Single
	factory func(ctx context.Context) (reflect.Value, error)
	info    *typeInfo
	oneway  []string // Go names
}

// Daemon serves registered objects. Create it with [New]; it is safe for
// concurrent use.
type Daemon struct {
	cfg      Config
	srv      *server.Server
	maxFrame int64
	ctx      context.Context // cancelled by Close; parent of every call's context
	cancel   context.CancelFunc
	ready    chan struct{}
	nextConn atomic.Uint64

	mu       sync.RWMutex
	objects  map[string]*entry          // guarded by mu
	types    map[reflect.Type]*typeInfo // guarded by mu
	sessions map[*wire.GuardConn]*connState
	streams  map[string]*stream // open streams by id; guarded by mu
	owned    map[uint64]int     // open streams per connection id; guarded by mu
	byInst   map[any]string     // registered Single instances (comparable ones) to their ids; guarded by mu
	loc      hostPort           // advertised location; guarded by mu
	ln       net.Listener       // guarded by mu
	serving  bool               // guarded by mu
	draining bool               // guarded by mu: Shutdown or Close began
	closed   bool               // guarded by mu
	active   int                // calls running now; guarded by mu
	drained  chan struct{}
	conns    int // open connections; guarded by mu
}

// connState is what the daemon keeps per client connection.
type connState struct {
	id        uint64
	ctx       context.Context // cancelled when the connection closes
	cancel    context.CancelFunc
	instances map[string]reflect.Value // Session instances by object id; guarded by Daemon.mu
}

// New returns a daemon configured by opts. It serves nothing until
// [Daemon.Serve].
func New(opts ...Option) (*Daemon, error) {
	var cfg Config
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg:      cfg,
		maxFrame: cfg.MaxMessageSize + wire.FrameOverhead,
		ready:    make(chan struct{}),
		objects:  map[string]*entry{},
		types:    map[reflect.Type]*typeInfo{},
		sessions: map[*wire.GuardConn]*connState{},
		streams:  map[string]*stream{},
		owned:    map[uint64]int{},
		byInst:   map[any]string{},
		drained:  make(chan struct{}),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if cfg.Advertise != "" {
		d.loc, _ = splitHostPort(cfg.Advertise)
	}
	d.srv = wire.NewServer(d.handle)
	if _, err := d.Register(&daemonObject{d: d}, WithID(gopyro.DaemonID)); err != nil && !errors.Is(err, errNoLocation) {
		return nil, err
	}
	return d, nil
}

var errNoLocation = errors.New("daemon: no address yet")

func (d *Daemon) fail(op string, code gopyro.Code, format string, args ...any) *gopyro.Error {
	return &gopyro.Error{Code: code, Op: op, Message: fmt.Sprintf(format, args...)}
}

// Register serves obj under a new URI. obj's exported methods become
// remotely callable (methods with pointer receivers need a pointer). It
// refuses a value without callable methods, naming each method it cannot
// serve and why, and an id already in use unless [Force] is given.
//
// The URI's location is [Config.Advertise] or the listener given to
// [Daemon.Serve]; registering before either is known returns the object's
// URI without a location together with an error wrapping gopyro.ErrInvalid
// (the object is registered nonetheless).
func (d *Daemon) Register(obj any, opts ...RegisterOption) (gopyro.URI, error) {
	if obj == nil {
		return gopyro.URI{}, d.fail("register", gopyro.CodeInvalid, "nil object")
	}
	v := reflect.ValueOf(obj)
	return d.register(v.Type(), Single, v, nil, opts)
}

// RegisterFactory serves objects made by factory, one per client
// connection ([Session]) or per call ([PerCall]). factory is a func() T,
// func() (T, error) or func(context.Context) (T, error); T's methods are
// the remote methods.
func (d *Daemon) RegisterFactory(mode InstanceMode, factory any, opts ...RegisterOption) (gopyro.URI, error) {
	const op = "register factory"
	if mode != Session && mode != PerCall {
		return gopyro.URI{}, d.fail(op, gopyro.CodeInvalid, "mode must be Session or PerCall, not %s", mode)
	}
	fv := reflect.ValueOf(factory)
	ft := fv.Type()
	if !fv.IsValid() || ft.Kind() != reflect.Func {
		return gopyro.URI{}, d.fail(op, gopyro.CodeInvalid, "factory must be a function, not %T", factory)
	}
	withCtx := ft.NumIn() == 1 && ft.In(0) == ctxType
	withErr := ft.NumOut() == 2 && ft.Out(1) == errorType
	if (ft.NumIn() != 0 && !withCtx) || (ft.NumOut() != 1 && !withErr) || ft.Out(0).Kind() == reflect.Interface {
		return gopyro.URI{}, d.fail(op, gopyro.CodeInvalid,
			"factory must be func() T, func() (T, error) or func(context.Context) (T, error) with a concrete T, not %s", ft)
	}
	make := func(ctx context.Context) (reflect.Value, error) {
		var in []reflect.Value
		if withCtx {
			in = []reflect.Value{reflect.ValueOf(ctx)}
		}
		out := fv.Call(in)
		if withErr && !out[1].IsNil() {
			return reflect.Value{}, out[1].Interface().(error)
		}
		if (out[0].Kind() == reflect.Pointer) && out[0].IsNil() {
			return reflect.Value{}, errors.New("factory returned nil")
		}
		return out[0], nil
	}
	return d.register(ft.Out(0), mode, reflect.Value{}, make, opts)
}

func (d *Daemon) register(t reflect.Type, mode InstanceMode, inst reflect.Value,
	factory func(context.Context) (reflect.Value, error), opts []RegisterOption) (gopyro.URI, error) {
	const op = "register"
	var rc regConfig
	for _, o := range opts {
		o(&rc)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return gopyro.URI{}, d.fail(op, gopyro.CodeClosed, "daemon is closed")
	}
	ti := d.typeInfoLocked(t)
	if len(ti.methods) == 0 {
		msg := fmt.Sprintf("%s has no remotely callable methods", t)
		if len(ti.refused) > 0 {
			msg += ": " + strings.Join(ti.refused, "; ")
		}
		if t.Kind() != reflect.Pointer && reflect.PointerTo(t).NumMethod() > 0 {
			msg += fmt.Sprintf(" (its methods have pointer receivers: register a *%s)", t)
		}
		return gopyro.URI{}, d.fail(op, gopyro.CodeInvalid, "%s", msg)
	}
	if len(ti.refused) > 0 {
		d.cfg.Logger.Warn("daemon: some methods cannot be served", "type", t.String(), "methods", ti.refused)
	}
	for _, name := range rc.oneway {
		if m, ok := ti.byName[name]; !ok || m.name != name {
			return gopyro.URI{}, d.fail(op, gopyro.CodeInvalid, "oneway method %q is not a callable method of %s", name, t)
		}
	}
	id := rc.id
	if id == "" {
		id = newObjectID()
	}
	if err := gopyro.ValidateName(id); err != nil {
		return gopyro.URI{}, err
	}
	if _, dup := d.objects[id]; dup && !rc.force {
		return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeExists, Op: op,
			Message: fmt.Sprintf("object id %q is already registered (use daemon.Force to replace it)", id)}
	}
	if old, dup := d.objects[id]; dup {
		d.forgetInstLocked(old)
	}
	d.objects[id] = &entry{id: id, mode: mode, inst: inst, factory: factory, info: ti, oneway: slices.Clone(rc.oneway)}
	if mode == Single && inst.Kind() == reflect.Pointer && id != gopyro.DaemonID {
		if _, taken := d.byInst[inst.Interface()]; !taken {
			d.byInst[inst.Interface()] = id
		}
	}
	return d.uriLocked(id)
}

func (d *Daemon) typeInfoLocked(t reflect.Type) *typeInfo {
	ti, ok := d.types[t]
	if !ok {
		ti = newTypeInfo(t)
		d.types[t] = ti
	}
	return ti
}

func newObjectID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "obj_" + hex.EncodeToString(b[:])
}

// Unregister stops serving the object with id (an id or a URI string).
// It returns gopyro.ErrNotFound when nothing is registered under it.
func (d *Daemon) Unregister(id string) error {
	if u, err := gopyro.Parse(id); err == nil {
		id = u.Object
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.objects[id]
	if !ok || id == gopyro.DaemonID {
		return d.fail("unregister", gopyro.CodeNotFound, "no object %q", id)
	}
	delete(d.objects, id)
	d.forgetInstLocked(e)
	for _, cs := range d.sessions {
		if inst, ok := cs.instances[id]; ok {
			closeInstance(inst)
			delete(cs.instances, id)
		}
	}
	return nil
}

// URI returns the URI of the object registered under id.
func (d *Daemon) URI(id string) (gopyro.URI, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if _, ok := d.objects[id]; !ok {
		return gopyro.URI{}, d.fail("uri", gopyro.CodeNotFound, "no object %q", id)
	}
	return d.uriLocked(id)
}

func (d *Daemon) uriLocked(id string) (gopyro.URI, error) {
	u := gopyro.NewPyroURI(id, d.loc.host, d.loc.port)
	if d.loc.port == 0 {
		return u, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "uri", Err: errNoLocation,
			Message: "the daemon's address is not known yet: call Serve (or wait for Ready) first, or set WithAdvertise"}
	}
	return u, nil
}

// Registered returns the registered object ids, sorted.
func (d *Daemon) Registered() []string {
	d.mu.RLock()
	ids := make([]string, 0, len(d.objects))
	for id := range d.objects {
		ids = append(ids, id)
	}
	d.mu.RUnlock()
	slices.Sort(ids)
	return ids
}

// Ready is closed once Serve has its listener and URIs can be made.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Addr returns the listener's address, or nil before Serve.
func (d *Daemon) Addr() net.Addr {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.ln == nil {
		return nil
	}
	return d.ln.Addr()
}

// Serve serves calls on ln until ctx is done, [Daemon.Shutdown] or
// [Daemon.Close]; then it returns nil. A daemon serves one listener once.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	d.mu.Lock()
	switch {
	case d.closed || d.draining:
		d.mu.Unlock()
		return d.fail("serve", gopyro.CodeClosed, "daemon is closed")
	case d.serving:
		d.mu.Unlock()
		return d.fail("serve", gopyro.CodeInvalid, "daemon is already serving")
	}
	d.serving = true
	d.ln = ln
	if d.loc.port == 0 {
		hp, err := splitHostPort(ln.Addr().String())
		if err == nil {
			d.loc = hp
		}
	}
	close(d.ready)
	d.mu.Unlock()

	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && d.cfg.TLS == nil && d.cfg.Token == "" {
		d.cfg.Logger.Warn("daemon: serving on a non-loopback address without TLS or a token: anyone who can reach it can call every registered object",
			"addr", ln.Addr().String())
	}
	stop := context.AfterFunc(ctx, func() { _ = d.Close() })
	defer stop()
	err := d.srv.ServeListener(wire.ServeNetwork, &guardListener{Listener: ln, d: d})
	d.mu.RLock()
	stopped := d.draining
	d.mu.RUnlock()
	if stopped || errors.Is(err, server.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("daemon: serve: %w", err)
}

// Shutdown stops accepting connections and new calls, waits until the
// calls in flight have finished (or ctx is done), then closes every
// connection. It returns ctx's error if the calls did not finish in time.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	first := !d.draining
	d.draining = true
	ln := d.ln
	if first && d.active == 0 {
		close(d.drained)
	}
	d.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	var err error
	select {
	case <-d.drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return errors.Join(err, d.Close())
}

// Close stops the daemon now: it closes the listener and every connection
// and cancels the context of every call still running.
func (d *Daemon) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	if !d.draining {
		d.draining = true
		if d.active == 0 {
			close(d.drained)
		}
	}
	ln := d.ln
	d.mu.Unlock()
	d.cancel()
	d.closeAllStreams()
	err := ignoreClosed(d.srv.Close())
	if ln != nil {
		// rpcx knows the listener only once its accept loop has started;
		// a Close right after Ready must still stop Serve.
		err = errors.Join(err, ignoreClosed(ln.Close()))
	}
	return err
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// begin counts a call in, for the in-flight limit and for draining.
func (d *Daemon) begin() beginResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.draining:
		return errDraining
	case d.active >= d.cfg.MaxInFlight:
		return errBusy
	}
	d.active++
	return begun
}

type beginResult uint8

const (
	begun beginResult = iota
	errDraining
	errBusy
)

func (d *Daemon) end() {
	d.mu.Lock()
	d.active--
	if d.active == 0 && d.draining {
		close(d.drained)
	}
	d.mu.Unlock()
}

// guardListener applies the connection limit, TLS and the frame guard.
type guardListener struct {
	net.Listener
	d *Daemon
}

func (l *guardListener) Accept() (net.Conn, error) {
	d := l.d
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		full := d.conns >= d.cfg.MaxConns
		if !full {
			d.conns++
		}
		d.mu.Unlock()
		if full {
			d.cfg.Logger.Warn("daemon: connection limit reached; closing new connection",
				"limit", d.cfg.MaxConns, "remote", c.RemoteAddr().String())
			_ = c.Close()
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if d.cfg.TLS != nil {
			c = tls.Server(c, d.cfg.TLS)
		}
		cs := &connState{id: d.nextConn.Add(1)}
		cs.ctx, cs.cancel = context.WithCancel(d.ctx)
		var gc *wire.GuardConn
		gc = wire.NewGuardConn(c, d.maxFrame, func() { d.connClosed(gc) })
		gc.ReplyOversize = true
		d.mu.Lock()
		d.sessions[gc] = cs
		d.mu.Unlock()
		return gc, nil
	}
}

func (d *Daemon) connClosed(gc *wire.GuardConn) {
	d.mu.Lock()
	d.conns--
	cs := d.sessions[gc]
	delete(d.sessions, gc)
	if cs != nil {
		d.orphanStreamsLocked(cs.id)
	}
	d.mu.Unlock()
	if cs != nil {
		cs.cancel()
		for _, inst := range cs.instances {
			closeInstance(inst)
		}
	}
}

// closeInstance calls Close on a session instance that has one.
func closeInstance(v reflect.Value) {
	switch c := v.Interface().(type) {
	case interface{ Close() error }:
		_ = c.Close()
	case interface{ Close() }:
		c.Close()
	}
}
