package daemon

import (
	"context"
	"errors"
	"net"
	"reflect"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// Ref is a reference to a remote object. It travels as a reference, not
// as a value: a method parameter of type *proxy.Proxy receives a proxy for
// it. Pass one as a call argument to hand your own object (a callback) to
// a server; get one for an object with [Daemon.Ref].
//
// A method result that is an object registered with its daemon (with
// [Daemon.Register], as a pointer) is sent as a reference automatically:
// the client decodes it into a *proxy.Proxy ("autoproxy").
type Ref struct {
	URI gopyro.URI
}

func init() {
	wire.RegisterRefType(wire.RefType{
		Type: reflect.TypeFor[Ref](),
		URI:  func(v reflect.Value) string { return v.Interface().(Ref).URI.String() },
		New:  func(u gopyro.URI) reflect.Value { return reflect.ValueOf(Ref{URI: u}) },
	})
}

// Ref returns a reference to obj, registering it first (with opts) if it
// is not registered yet ([Daemon.Register] returns the URI of a value
// already registered). obj must be a pointer so that it can be found
// again.
func (d *Daemon) Ref(obj any, opts ...RegisterOption) (Ref, error) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return Ref{}, d.fail("ref", gopyro.CodeInvalid, "a reference needs a non-nil pointer, not %T", obj)
	}
	u, err := d.Register(obj, opts...)
	return Ref{URI: u}, err
}

// refOf returns the reference for a result value that is a registered
// object.
func (d *Daemon) refOf(v reflect.Value) (Ref, bool) {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return Ref{}, false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	id, ok := d.byInst[v.Interface()]
	if !ok {
		return Ref{}, false
	}
	if !d.loc.known() {
		return Ref{}, false
	}
	return Ref{URI: d.uriLocked(id)}, true
}

// forgetInstLocked drops e's instance from the reference table.
func (d *Daemon) forgetInstLocked(e *entry) {
	if e.mode == Single && e.inst.IsValid() && e.inst.Kind() == reflect.Pointer {
		if d.byInst[e.inst.Interface()] == e.id {
			delete(d.byInst, e.inst.Interface())
		}
	}
}

// Start listens on addr ("127.0.0.1:0" when empty: a free loopback port),
// serves in the background and returns once the daemon has its address.
// It suits a client that serves callback objects. Stop it with
// [Daemon.Close] or [Daemon.Shutdown], or by cancelling ctx.
//
// A callback daemon must be reachable from the server that calls back:
// behind NAT, or when the server runs elsewhere, listen on an address the
// server can reach and set WithAdvertise to the address it should dial.
func Start(ctx context.Context, addr string, opts ...Option) (*Daemon, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	d, err := New(opts...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeCommunication, Op: "daemon.Start", Err: err}
	}
	errc := make(chan error, 1)
	go func() {
		if err := d.Serve(ctx, ln); err != nil {
			d.cfg.Logger.Error("daemon: serve", "err", err)
			errc <- err
		}
	}()
	select {
	case <-d.Ready():
		return d, nil
	case err := <-errc:
		return nil, errors.Join(err, ln.Close())
	}
}
