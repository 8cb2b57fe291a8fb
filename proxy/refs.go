package proxy

import (
	"reflect"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// A *Proxy travels as a reference to its object: a proxy passed as a call
// argument reaches the method (a *proxy.Proxy parameter) as a proxy of its
// own for that object, which is how a client hands a callback object to a
// server; a reference in a call's results (a registered object returned by
// a method, a daemon.Ref) decodes into a new proxy. A proxy decoded from a
// call's results takes the options (TLS, token, timeouts, resolver) of the
// proxy that made the call; one received by a method has the defaults.
func init() {
	wire.RegisterRefType(wire.RefType{
		Type: proxyPtrType,
		URI:  func(v reflect.Value) string { return v.Interface().(*Proxy).refURI().String() },
		New: func(u gopyro.URI) reflect.Value {
			p := &Proxy{}
			p.init(u, config{maxMessage: gopyro.DefaultMaxMessageSize})
			return reflect.ValueOf(p)
		},
	})
}

// refURI is the URI a reference to p carries: the resolved object, or a
// PYRONAME the receiver resolves itself.
func (p *Proxy) refURI() gopyro.URI {
	p.mu.Lock()
	u := p.target
	p.mu.Unlock()
	if u.IsZero() {
		u = p.uri
	}
	return u
}

var proxyPtrType = reflect.TypeFor[*Proxy]()

// adopt gives proxies decoded into vals the options of parent.
func adopt(parent *Proxy, vals []reflect.Value) {
	if parent == nil {
		return
	}
	parent.mu.Lock()
	py := parent.py
	parent.mu.Unlock()
	for _, v := range vals {
		if v.Type() == proxyPtrType && !v.IsNil() {
			q := v.Interface().(*Proxy)
			q.init(q.uri, parent.cfg)
			q.py = py // a child on the same Python daemon needs no second try
		}
	}
}
