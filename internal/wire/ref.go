package wire

import (
	"fmt"

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
