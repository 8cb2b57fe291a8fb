package proxy

import (
	"reflect"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// EncodeMsgpack implements msgpack.CustomEncoder: a proxy passed as a call
// argument travels as a reference to its object, and the method receiving
// it (a *proxy.Proxy parameter) gets a proxy of its own for that object.
// This is how a client hands a callback object to a server.
func (p *Proxy) EncodeMsgpack(e *msgpack.Encoder) error {
	p.mu.Lock()
	u := p.target
	p.mu.Unlock()
	if u.IsZero() {
		u = p.uri // a PYRONAME the receiver resolves itself
	}
	return wire.EncodeRef(e, u.String())
}

// DecodeMsgpack implements msgpack.CustomDecoder: a reference (a
// registered object returned by a method, a daemon.Ref, or a proxy passed
// as an argument) becomes a new proxy. A proxy decoded from a call's
// results takes the options (TLS, token, timeouts, resolver) of the
// proxy that made the call; one received by a method has the defaults.
func (p *Proxy) DecodeMsgpack(d *msgpack.Decoder) error {
	u, err := wire.DecodeRef(d)
	if err != nil {
		return err
	}
	p.init(u, config{maxMessage: gopyro.DefaultMaxMessageSize})
	return nil
}

var proxyPtrType = reflect.TypeFor[*Proxy]()

// adopt gives proxies decoded into vals the options of parent.
func adopt(parent *Proxy, vals []reflect.Value) {
	if parent == nil {
		return
	}
	for _, v := range vals {
		if v.Type() == proxyPtrType && !v.IsNil() {
			q := v.Interface().(*Proxy)
			q.init(q.uri, parent.cfg)
		}
	}
}
