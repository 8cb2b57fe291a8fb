package wire

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// maxPooledBuf caps the buffers kept for reuse, so one large payload does
// not pin its memory.
const maxPooledBuf = 64 << 10

// Encoder writes msgpack arrays. It is not safe for concurrent use; get one
// with [NewEncoder] and return it with [Encoder.Release].
type Encoder struct {
	buf *bytes.Buffer
	enc *msgpack.Encoder

	scatter  bool
	one      [1][]byte // see One
	segs     [][]byte  // see Segments
	segStart int       // where the segment being written starts in buf
}

var encPool = sync.Pool{New: func() any {
	e := &Encoder{buf: new(bytes.Buffer)}
	e.enc = msgpack.NewEncoder(e.buf)
	return e
}}

// NewEncoder returns an encoder from a pool.
func NewEncoder() *Encoder {
	e := encPool.Get().(*Encoder)
	e.buf.Reset()
	e.scatter, e.segs, e.segStart = false, e.segs[:0], 0
	return e
}

// EncodeArray appends vals as one msgpack array.
func (e *Encoder) EncodeArray(vals ...any) error {
	size := 0
	for _, v := range vals {
		switch x := v.(type) {
		case []byte:
			if !e.scatter || len(x) < ScatterMin {
				size += len(x)
			}
		case string:
			size += len(x)
		}
	}
	e.grow(size)
	if err := e.enc.EncodeArrayLen(len(vals)); err != nil {
		return err
	}
	for i, v := range vals {
		if e.scatterBytes(v) {
			continue
		}
		if err := e.encodeValue(v); err != nil {
			return fmt.Errorf("wire: encode value %d (%T): %w", i, v, err)
		}
	}
	return nil
}

// scatterBytes writes a large []byte v as a segment of its own when the
// encoder scatters, and reports whether it did.
func (e *Encoder) scatterBytes(v any) bool {
	b, ok := v.([]byte)
	if !e.scatter || !ok || len(b) < ScatterMin {
		return false
	}
	// Header here, bytes as their own segment: not copied.
	_ = e.enc.EncodeBytesLen(len(b)) // writes to a bytes.Buffer: cannot fail
	e.segs = append(e.segs, e.buf.Bytes()[e.segStart:e.buf.Len():e.buf.Len()], b)
	e.segStart = e.buf.Len()
	return true
}

// EncodeValues appends vals (reflect values) as one msgpack array.
func (e *Encoder) EncodeValues(vals []reflect.Value) error {
	size := 0
	for _, v := range vals {
		v = concrete(v)
		switch {
		case v.Kind() == reflect.String, v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
			if !e.scatter || v.Len() < ScatterMin {
				size += v.Len()
			}
		}
	}
	e.grow(size)
	if err := e.enc.EncodeArrayLen(len(vals)); err != nil {
		return err
	}
	for i, v := range vals {
		if e.scatter && e.scatterBytes(concrete(v).Interface()) {
			continue
		}
		if err := e.encodeValue(v.Interface()); err != nil {
			return fmt.Errorf("wire: encode value %d (%s): %w", i, v.Type(), err)
		}
	}
	return nil
}

// concrete unwraps interfaces.
func concrete(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	return v
}

// ScatterMin is the size from which a scattering encoder leaves a []byte
// value in place (see [Encoder.Scatter]).
const ScatterMin = 256 << 10

// Scatter makes EncodeValues leave large []byte values where they are:
// the encoding is then [Encoder.Segments], for a writer that sends them
// with writev ([GuardConn.WriteReply]), and Raw copies them together.
func (e *Encoder) Scatter() { e.scatter = true }

// One returns b as a one-piece payload without allocating: a slice of the
// encoder's own, valid until Release.
func (e *Encoder) One(b []byte) [][]byte {
	e.one[0] = b
	return e.one[:]
}

// Segments returns the encoding as consecutive pieces; nil when it is one
// piece (use Raw).
func (e *Encoder) Segments() [][]byte {
	if len(e.segs) == 0 {
		return nil
	}
	return append(e.segs, e.buf.Bytes()[e.segStart:])
}

func (e *Encoder) encodeValue(v any) (err error) {
	// msgpack panics on some values (for example a nil pointer inside an
	// interface with a value-receiver marshaler); report instead.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot encode: %v", r)
		}
	}()
	switch x := v.(type) {
	case nil:
		return e.enc.EncodeNil()
	case error:
		// msgpack writes an error value as {}: send its text.
		return e.enc.EncodeString(x.Error())
	}
	return e.enc.Encode(v)
}

// Bytes returns the encoded bytes: a copy, or for a buffer too large to be
// pooled, the buffer itself (Release then drops it).
func (e *Encoder) Bytes() []byte {
	if e.buf.Cap() > maxPooledBuf {
		return e.buf.Bytes()
	}
	return bytes.Clone(e.buf.Bytes())
}

// An encoder grows its buffer ahead for values from growMin bytes, with
// growSlack for their headers.
const (
	growMin   = 4 << 10
	growSlack = 64
)

// grow makes room for about n more bytes, so that a large []byte or
// string is copied into the buffer once instead of through repeated
// doubling.
func (e *Encoder) grow(n int) {
	if n > growMin {
		e.buf.Grow(n + growSlack)
	}
}

// Release returns the encoder's resources to their pools.
func (e *Encoder) Release() {
	clear(e.segs) // do not pin the caller's slices
	e.one[0] = nil
	e.segs = e.segs[:0]
	if e.buf.Cap() > maxPooledBuf {
		// Do not pin a large buffer: the pooled encoder gets a fresh one
		// (Bytes may have handed this one out).
		e.buf = new(bytes.Buffer)
		e.enc.Reset(e.buf)
	}
	encPool.Put(e)
}

// Raw returns the encoded bytes without copying them (unless the encoding
// was scattered); they are valid until Release.
func (e *Encoder) Raw() []byte {
	if segs := e.Segments(); segs != nil {
		return bytes.Join(segs, nil)
	}
	return e.buf.Bytes()
}

// EncodeArray encodes vals as one msgpack array.
func EncodeArray(vals ...any) ([]byte, error) {
	e := NewEncoder()
	defer e.Release()
	if err := e.EncodeArray(vals...); err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}
