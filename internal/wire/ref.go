package wire

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/gopyro/gopyro"
	"github.com/vmihailenco/msgpack/v5"
)

// RefExt is the msgpack extension type of an object reference: its data
// is the object's URI. A method result that is a registered object, a
// daemon.Ref and a *proxy.Proxy argument all travel as references.
const RefExt int8 = 'P'

// MaxRefLen bounds the URI in a reference.
const MaxRefLen = 4096

// EncodeRef writes a reference to uri.
func EncodeRef(e *msgpack.Encoder, uri string) error {
	if err := e.EncodeExtHeader(RefExt, len(uri)); err != nil {
		return err
	}
	_, err := e.Writer().Write([]byte(uri))
	return err
}

// DecodeRef reads a reference and returns its URI.
func DecodeRef(d *msgpack.Decoder) (gopyro.URI, error) {
	id, n, err := d.DecodeExtHeader()
	if err != nil {
		return gopyro.URI{}, err
	}
	if id == StreamExt {
		_ = d.Skip()
		return gopyro.URI{}, fmt.Errorf("the value is a stream: read it with proxy.Stream")
	}
	if id != RefExt {
		return gopyro.URI{}, fmt.Errorf("unknown msgpack extension %d", id)
	}
	if n > MaxRefLen {
		return gopyro.URI{}, fmt.Errorf("object reference of %d bytes", n)
	}
	b := make([]byte, n)
	if err := d.ReadFull(b); err != nil {
		return gopyro.URI{}, err
	}
	u, err := gopyro.Parse(string(b))
	if err != nil {
		return gopyro.URI{}, err
	}
	return u, nil
}

// RefType is a Go type that travels as an object reference: the daemon's
// Ref and the proxy's *Proxy. Their packages register them with
// [RegisterRefType], so that they need no msgpack methods in their public
// API.
type RefType struct {
	// Type is the Go type (daemon.Ref, *proxy.Proxy).
	Type reflect.Type
	// URI returns the URI a value of Type refers to.
	URI func(v reflect.Value) string
	// New returns a value of Type referring to u.
	New func(u gopyro.URI) reflect.Value
}

// refTypes holds the registered RefTypes by Go type. Registration happens
// in the init of the package that declares the type, before any value of
// it can be encoded or decoded; later it is only read.
var refTypes sync.Map // reflect.Type -> *RefType

// RegisterRefType makes values of rt.Type travel as references, at the top
// level of arguments and results and nested inside other values alike.
// Call it from the init of the package declaring the type.
func RegisterRefType(rt RefType) {
	refTypes.Store(rt.Type, &rt)
	var zero any = reflect.Zero(rt.Type).Interface()
	msgpack.Register(zero,
		func(e *msgpack.Encoder, v reflect.Value) error {
			if rt.Type.Kind() == reflect.Pointer && v.IsNil() {
				return e.EncodeNil()
			}
			return EncodeRef(e, rt.URI(v))
		},
		func(d *msgpack.Decoder, v reflect.Value) error {
			return decodeRefInto(d, &rt, v)
		})
}

// refTypeOf returns the RefType registered for t.
func refTypeOf(t reflect.Type) (*RefType, bool) {
	rt, ok := refTypes.Load(t)
	if !ok {
		return nil, false
	}
	return rt.(*RefType), true
}

// decodeRefInto decodes a reference (or nil) into v, of type rt.Type.
func decodeRefInto(d *msgpack.Decoder, rt *RefType, v reflect.Value) error {
	if isNil(d) {
		v.SetZero()
		return d.Skip()
	}
	u, err := DecodeRef(d)
	if err != nil {
		return err
	}
	v.Set(rt.New(u))
	return nil
}

// NewRefValue returns a value of reference type t referring to u; ok is
// false when t is not a registered reference type.
func NewRefValue(t reflect.Type, u gopyro.URI) (reflect.Value, bool) {
	rt, ok := refTypeOf(t)
	if !ok {
		return reflect.Value{}, false
	}
	return rt.New(u), true
}

// RefURIOf returns the URI a value of a registered reference type refers
// to; ok is false for any other value (and for a nil pointer).
func RefURIOf(v reflect.Value) (string, bool) {
	rt, ok := refTypeOf(v.Type())
	if !ok || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return "", false
	}
	return rt.URI(v), true
}
