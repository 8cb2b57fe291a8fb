package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/gopyro/gopyro"
)

// Register serves obj under a new URI. obj's exported methods become
// remotely callable (methods with pointer receivers need a pointer). It
// refuses a value without callable methods, naming each method it cannot
// serve and why, and an id already in use unless [Force] is given.
//
// Registering a value that is already registered (the same pointer, or an
// equal comparable value) returns its existing URI; asking for it under a
// second id with [WithID] is an error (gopyro.ErrExists).
//
// The URI's location is [Config.Advertise] or the listener given to
// [Daemon.Serve]. Before either is known (before [Daemon.Ready] is closed)
// Register fails with gopyro.ErrInvalid and registers nothing.
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
// the remote methods. Like [Daemon.Register], it needs the daemon's
// address.
func (d *Daemon) RegisterFactory(mode InstanceMode, factory any, opts ...RegisterOption) (gopyro.URI, error) {
	const op = "register factory"
	if mode != Session && mode != PerCall {
		return gopyro.URI{}, d.fail(op, gopyro.CodeInvalid, "mode must be Session or PerCall, not %s", mode)
	}
	fv := reflect.ValueOf(factory)
	if !fv.IsValid() || fv.Kind() != reflect.Func {
		return gopyro.URI{}, d.fail(op, gopyro.CodeInvalid, "factory must be a function, not %T", factory)
	}
	ft := fv.Type()
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
	switch {
	case d.closed:
		return gopyro.URI{}, d.fail(op, gopyro.CodeClosed, "daemon is closed")
	case !d.loc.known():
		return gopyro.URI{}, d.errNoAddress(op)
	}
	if rc.id != "" {
		if err := gopyro.ValidateName(rc.id); err != nil {
			return gopyro.URI{}, err
		}
	}
	if err := d.checkLocked(t, rc.oneway); err != nil {
		return gopyro.URI{}, err
	}
	if mode == Single {
		if id, ok := d.registeredLocked(inst); ok {
			if rc.id != "" && rc.id != id {
				return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeExists, Op: op,
					Message: fmt.Sprintf("this value is already registered as %q; unregister it first to use id %q", id, rc.id)}
			}
			return d.uriLocked(id), nil
		}
	}
	id := rc.id
	if id == "" {
		id = newObjectID()
	}
	if _, dup := d.objects[id]; dup && !rc.force {
		return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeExists, Op: op,
			Message: fmt.Sprintf("object id %q is already registered (use daemon.Force to replace it)", id)}
	}
	if id == gopyro.DaemonID {
		return gopyro.URI{}, d.fail(op, gopyro.CodeInvalid, "%q is the daemon's own object", id)
	}
	var facade *entry
	if rc.pyro != nil {
		fv := reflect.ValueOf(rc.pyro)
		if err := d.checkLocked(fv.Type(), nil); err != nil {
			return gopyro.URI{}, err
		}
		facade = &entry{id: id, mode: Single, inst: fv, info: d.typeInfoLocked(fv.Type())}
	}
	d.addLocked(id, mode, t, inst, factory, rc.oneway)
	d.objects[id].pyro = facade
	return d.uriLocked(id), nil
}

// add registers an object without making its URI (the built-in objects
// are registered before the daemon has an address).
func (d *Daemon) add(id string, mode InstanceMode, inst reflect.Value, factory func(context.Context) (reflect.Value, error), oneway []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkLocked(inst.Type(), oneway); err != nil {
		return err
	}
	d.addLocked(id, mode, inst.Type(), inst, factory, oneway)
	return nil
}

// checkLocked says why values of type t cannot be served, if they cannot.
func (d *Daemon) checkLocked(t reflect.Type, oneway []string) error {
	const op = "register"
	ti := d.typeInfoLocked(t)
	if len(ti.methods) == 0 {
		msg := fmt.Sprintf("%s has no remotely callable methods", t)
		if len(ti.refused) > 0 {
			msg += ": " + strings.Join(ti.refused, "; ")
		}
		if t.Kind() != reflect.Pointer && reflect.PointerTo(t).NumMethod() > 0 {
			msg += fmt.Sprintf(" (its methods have pointer receivers: register a *%s)", t)
		}
		return d.fail(op, gopyro.CodeInvalid, "%s", msg)
	}
	for _, name := range oneway {
		if m, ok := ti.byName[name]; !ok || m.name != name {
			return d.fail(op, gopyro.CodeInvalid, "oneway method %q is not a callable method of %s", name, t)
		}
	}
	if len(ti.refused) > 0 {
		d.cfg.Logger.Warn("daemon: some methods cannot be served", "type", t.String(), "methods", ti.refused)
	}
	return nil
}

// addLocked registers an object that checkLocked accepted.
func (d *Daemon) addLocked(id string, mode InstanceMode, t reflect.Type, inst reflect.Value,
	factory func(context.Context) (reflect.Value, error), oneway []string) {
	ti := d.typeInfoLocked(t)
	if old, dup := d.objects[id]; dup {
		d.forgetInstLocked(old)
	}
	d.objects[id] = &entry{id: id, mode: mode, inst: inst, factory: factory, info: ti, oneway: slices.Clone(oneway)}
	if mode == Single && inst.Kind() == reflect.Pointer && id != gopyro.DaemonID {
		if _, taken := d.byInst[inst.Interface()]; !taken {
			d.byInst[inst.Interface()] = id
		}
	}
}

// registeredLocked returns the id inst is registered under: the same
// pointer, or an equal comparable value.
func (d *Daemon) registeredLocked(inst reflect.Value) (string, bool) {
	if inst.Kind() == reflect.Pointer {
		id, ok := d.byInst[inst.Interface()]
		return id, ok
	}
	if !inst.Comparable() {
		return "", false
	}
	for id, e := range d.objects {
		if e.mode == Single && e.inst.Type() == inst.Type() && e.inst.Equal(inst) {
			return id, true
		}
	}
	return "", false
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
// Session instances of it are closed (their Close method, if any, runs
// after the daemon's locks are released). It returns gopyro.ErrNotFound
// when nothing is registered under id.
func (d *Daemon) Unregister(id string) error {
	if u, err := gopyro.Parse(id); err == nil {
		id = u.Object
	}
	d.mu.Lock()
	e, ok := d.objects[id]
	if !ok || id == gopyro.DaemonID {
		d.mu.Unlock()
		return d.fail("unregister", gopyro.CodeNotFound, "no object %q", id)
	}
	delete(d.objects, id)
	d.forgetInstLocked(e)
	var closing []reflect.Value
	d.connMu.Lock()
	for cs := range d.conns {
		if inst, ok := cs.instances[id]; ok {
			closing = append(closing, inst)
			delete(cs.instances, id)
		}
	}
	d.connMu.Unlock()
	d.mu.Unlock()
	for _, inst := range closing {
		closeInstance(inst)
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
	if !d.loc.known() {
		return gopyro.URI{}, d.errNoAddress("uri")
	}
	return d.uriLocked(id), nil
}

// errNoAddress says why no URI can be made yet.
func (d *Daemon) errNoAddress(op string) *gopyro.Error {
	return d.fail(op, gopyro.CodeInvalid,
		"the daemon's address is not known yet: wait until Serve has started (Ready is closed), or set WithAdvertise")
}

// uriLocked makes the URI of id; the location must be known.
func (d *Daemon) uriLocked(id string) gopyro.URI {
	return d.loc.uri(id)
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

// closeInstance calls Close on a session instance that has one.
func closeInstance(v reflect.Value) {
	switch c := v.Interface().(type) {
	case interface{ Close() error }:
		_ = c.Close()
	case interface{ Close() }:
		c.Close()
	}
}
