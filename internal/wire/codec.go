package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
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
	segs     [][]byte // see Segments
	segStart int      // where the segment being written starts in buf
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

// grow makes room for about n more bytes, so that a large []byte or
// string is copied into the buffer once instead of through repeated
// doubling.
func (e *Encoder) grow(n int) {
	if n > 4<<10 {
		e.buf.Grow(n + 64)
	}
}

// Release returns the encoder's resources to their pools.
func (e *Encoder) Release() {
	clear(e.segs) // do not pin the caller's slices
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

// ArgError describes an argument or result that does not fit its declared
// type.
type ArgError struct {
	Index int    // position in the array, from 0
	Type  string // the declared Go type
	Msg   string
}

func (e *ArgError) Error() string {
	return fmt.Sprintf("argument %d (%s): %s", e.Index, e.Type, e.Msg)
}

// Decoder reads one validated msgpack array into declared Go types. Create
// it with [NewDecoder] after [Validate] succeeded on the bytes.
type Decoder struct {
	src   []byte
	r     bytes.Reader
	dec   *msgpack.Decoder
	n     int
	alias bool
}

// NewDecoder starts decoding the array in b, which must have passed
// [Validate]. It reads the array header; [Decoder.Len] is its length.
func NewDecoder(b []byte) (*Decoder, error) {
	d := decPool.Get().(*Decoder)
	d.src, d.alias = b, false
	d.r.Reset(b)
	d.dec.Reset(&d.r)
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		d.Release()
		return nil, fmt.Errorf("wire: payload is not an array: %w", err)
	}
	if n < 0 {
		n = 0
	}
	d.n = n
	return d, nil
}

var decPool = sync.Pool{New: func() any {
	d := &Decoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// NewAliasingDecoder is NewDecoder for bytes the caller owns and never
// reuses (a reply's payload; a request's payload, which rpcx v1.9 reads
// into a fresh buffer per request): a large bin value at the top level,
// decoded into a []byte or an any, then shares b's memory instead of being
// copied.
func NewAliasingDecoder(b []byte) (*Decoder, error) {
	d, err := NewDecoder(b)
	if d != nil {
		d.alias = true
	}
	return d, err
}

// Len is the number of values in the array.
func (d *Decoder) Len() int { return d.n }

// Release returns the decoder to its pool.
func (d *Decoder) Release() {
	d.src = nil
	d.r.Reset(nil)
	decPool.Put(d)
}

// Next decodes the next array element into v, which must be settable,
// converting numbers to v's type with range checks. index is only used in
// the error.
func (d *Decoder) Next(index int, v reflect.Value) error {
	if d.alias && (v.Type() == bytesType || v.Kind() == reflect.Interface && v.NumMethod() == 0) {
		if b, ok, err := d.aliasBytes(); ok || err != nil {
			if err != nil {
				return &ArgError{Index: index, Type: v.Type().String(), Msg: err.Error()}
			}
			if v.Kind() == reflect.Interface {
				v.Set(reflect.ValueOf(b))
			} else {
				v.SetBytes(b)
			}
			return nil
		}
	}
	return decodeArg(d.dec, index, v)
}

// decodeArg decodes the next value into v, reporting any failure (a panic
// in msgpack included) as an *ArgError for index.
func decodeArg(d *msgpack.Decoder, index int, v reflect.Value) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ArgError{Index: index, Type: v.Type().String(), Msg: fmt.Sprint("cannot decode: ", r)}
		}
	}()
	if err := decodeValue(d, v, 0); err != nil {
		var ae *ArgError
		if errors.As(err, &ae) {
			return err
		}
		return &ArgError{Index: index, Type: v.Type().String(), Msg: err.Error()}
	}
	return nil
}

// NextInterface decodes the next element into a plain Go value: integers
// as int64 (uint64 above MaxInt64), floats as float64, bin as []byte, maps
// as map[string]any (or map[any]any for other keys), arrays as []any,
// object references as gopyro.URI.
func (d *Decoder) NextInterface() (any, error) {
	return decodeLoose(d.dec, 0)
}

var (
	timeType  = reflect.TypeFor[time.Time]()
	bytesType = reflect.TypeFor[[]byte]()
)

// aliasBytes reads a bin value as a slice of the source bytes. ok is false
// when the next value is not bin (decode it the usual way).
func (d *Decoder) aliasBytes() (b []byte, ok bool, err error) {
	c, err := d.dec.PeekCode()
	if err != nil || !msgpcode.IsBin(c) {
		return nil, false, nil
	}
	n, err := d.dec.DecodeBytesLen()
	if err != nil {
		return nil, true, err
	}
	off := len(d.src) - d.r.Len()
	if n < 0 || off+n > len(d.src) {
		return nil, true, errors.New("truncated bin")
	}
	if n < 64<<10 {
		// Small: copy, so the slice does not keep the whole reply alive.
		b := make([]byte, n)
		copy(b, d.src[off:])
		_, err := d.r.Seek(int64(n), 1)
		return b, true, err
	}
	if _, err := d.r.Seek(int64(n), 1); err != nil {
		return nil, true, err
	}
	return d.src[off : off+n : off+n], true, nil
}

func decodeValue(d *msgpack.Decoder, v reflect.Value, depth int) error {
	if depth > MaxDepth {
		return errors.New("nested too deeply")
	}
	t := v.Type()
	if rt, ok := refTypeOf(t); ok {
		return decodeRefInto(d, rt, v)
	}
	if t == timeType || reflect.PointerTo(t).Implements(customDecoderType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		if isNil(d) {
			_ = d.Skip()
			v.SetZero()
			return nil
		}
		return d.DecodeValue(v)
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if isNil(d) {
			v.SetZero()
			return d.Skip()
		}
		i, err := decodeInt(d)
		if err != nil {
			return err
		}
		if v.OverflowInt(i) {
			return fmt.Errorf("value %d overflows %s", i, t)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if isNil(d) {
			v.SetZero()
			return d.Skip()
		}
		u, err := decodeUint(d)
		if err != nil {
			return err
		}
		if v.OverflowUint(u) {
			return fmt.Errorf("value %d overflows %s", u, t)
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		if isNil(d) {
			v.SetZero()
			return d.Skip()
		}
		f, err := decodeFloat(d)
		if err != nil {
			return err
		}
		if t.Kind() == reflect.Float32 && !math.IsInf(f, 0) && !math.IsNaN(f) && v.OverflowFloat(f) {
			return fmt.Errorf("value %g overflows float32", f)
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := d.DecodeBool()
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.String:
		s, err := d.DecodeString()
		if err != nil {
			return err
		}
		v.SetString(s)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			b, err := d.DecodeBytes()
			if err != nil {
				return err
			}
			v.SetBytes(b)
			return nil
		}
		n, err := d.DecodeArrayLen()
		if err != nil {
			return err
		}
		if n < 0 {
			v.SetZero()
			return nil
		}
		s := reflect.MakeSlice(t, n, n)
		for i := range n {
			if err := decodeValue(d, s.Index(i), depth+1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
		v.Set(s)
	case reflect.Array:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return err
		}
		if n != t.Len() {
			return fmt.Errorf("got %d elements, want %d", n, t.Len())
		}
		for i := range n {
			if err := decodeValue(d, v.Index(i), depth+1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	case reflect.Map:
		// msgpack also reads a map length from behind an extension header,
		// bytes Validate did not count as a length: take real maps only.
		if c, err := d.PeekCode(); err != nil || !(msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 || c == msgpcode.Nil) {
			return fmt.Errorf("want a map, got msgpack code 0x%02x", c)
		}
		n, err := d.DecodeMapLen()
		if err != nil {
			return err
		}
		if n < 0 {
			v.SetZero()
			return nil
		}
		m := reflect.MakeMapWithSize(t, n)
		for i := range n {
			k := reflect.New(t.Key()).Elem()
			if err := decodeValue(d, k, depth+1); err != nil {
				return fmt.Errorf("map key %d: %w", i, err)
			}
			e := reflect.New(t.Elem()).Elem()
			if err := decodeValue(d, e, depth+1); err != nil {
				return fmt.Errorf("map value %v: %w", k, err)
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		if isNil(d) {
			v.SetZero()
			return d.Skip()
		}
		p := reflect.New(t.Elem())
		if err := decodeValue(d, p.Elem(), depth+1); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return d.DecodeValue(v)
		}
		x, err := decodeLoose(d, depth)
		if err != nil {
			return err
		}
		if x == nil {
			v.SetZero()
		} else {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.Struct:
		if isNil(d) {
			v.SetZero()
			return d.Skip()
		}
		// Struct fields follow msgpack's own rules (field names or msgpack
		// tags); numeric range checks apply to parameters, results, and the
		// elements of slices, arrays, maps and pointers.
		return d.DecodeValue(v)
	default:
		return fmt.Errorf("cannot decode into %s", t)
	}
	return nil
}

var (
	customDecoderType = reflect.TypeFor[msgpack.CustomDecoder]()
	unmarshalerType   = reflect.TypeFor[msgpack.Unmarshaler]()
)

func isNil(d *msgpack.Decoder) bool {
	c, err := d.PeekCode()
	return err == nil && c == msgpcode.Nil
}

// decodeNumber reads any msgpack number as int64, uint64 or float64.
func decodeNumber(d *msgpack.Decoder) (any, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsFixedNum(c), c == msgpcode.Int8, c == msgpcode.Int16, c == msgpcode.Int32, c == msgpcode.Int64:
		return d.DecodeInt64()
	case c == msgpcode.Uint8, c == msgpcode.Uint16, c == msgpcode.Uint32, c == msgpcode.Uint64:
		return d.DecodeUint64()
	case c == msgpcode.Float, c == msgpcode.Double:
		return d.DecodeFloat64()
	}
	return nil, fmt.Errorf("want a number, got msgpack code 0x%02x", c)
}

func decodeInt(d *msgpack.Decoder) (int64, error) {
	x, err := decodeNumber(d)
	if err != nil {
		return 0, err
	}
	switch n := x.(type) {
	case int64:
		return n, nil
	case uint64:
		if n > math.MaxInt64 {
			return 0, fmt.Errorf("value %d overflows int64", n)
		}
		return int64(n), nil
	default:
		f := n.(float64)
		if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, fmt.Errorf("value %g is not an integer", f)
		}
		return int64(f), nil
	}
}

func decodeUint(d *msgpack.Decoder) (uint64, error) {
	x, err := decodeNumber(d)
	if err != nil {
		return 0, err
	}
	switch n := x.(type) {
	case int64:
		if n < 0 {
			return 0, fmt.Errorf("negative value %d for an unsigned type", n)
		}
		return uint64(n), nil
	case uint64:
		return n, nil
	default:
		f := n.(float64)
		if f != math.Trunc(f) || f < 0 || f >= math.MaxUint64 {
			return 0, fmt.Errorf("value %g is not an unsigned integer", f)
		}
		return uint64(f), nil
	}
}

func decodeFloat(d *msgpack.Decoder) (float64, error) {
	x, err := decodeNumber(d)
	if err != nil {
		return 0, err
	}
	switch n := x.(type) {
	case int64:
		return float64(n), nil
	case uint64:
		return float64(n), nil
	default:
		return n.(float64), nil
	}
}

// decodeLoose decodes any value into plain Go types; see
// [Decoder.NextInterface].
func decodeLoose(d *msgpack.Decoder, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, errors.New("nested too deeply")
	}
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case c == msgpcode.Nil:
		return nil, d.DecodeNil()
	case msgpcode.IsFixedArray(c), c == msgpcode.Array16, c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		s := make([]any, n)
		for i := range s {
			if s[i], err = decodeLoose(d, depth+1); err != nil {
				return nil, err
			}
		}
		return s, nil
	case msgpcode.IsFixedMap(c), c == msgpcode.Map16, c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		keys := make([]any, n)
		vals := make([]any, n)
		allStrings := true
		for i := range n {
			if keys[i], err = decodeLoose(d, depth+1); err != nil {
				return nil, err
			}
			if _, ok := keys[i].(string); !ok {
				allStrings = false
			}
			if vals[i], err = decodeLoose(d, depth+1); err != nil {
				return nil, err
			}
		}
		if allStrings {
			m := make(map[string]any, n)
			for i, k := range keys {
				m[k.(string)] = vals[i]
			}
			return m, nil
		}
		m := make(map[any]any, n)
		for i, k := range keys {
			if k != nil && !reflect.TypeOf(k).Comparable() {
				return nil, fmt.Errorf("map key of type %T cannot be a Go map key", k)
			}
			m[k] = vals[i]
		}
		return m, nil
	case msgpcode.IsFixedNum(c), c >= msgpcode.Uint8 && c <= msgpcode.Int64, c == msgpcode.Float, c == msgpcode.Double:
		x, err := decodeNumber(d)
		if err != nil {
			return nil, err
		}
		if u, ok := x.(uint64); ok && u <= math.MaxInt64 {
			return int64(u), nil
		}
		return x, nil
	case msgpcode.IsBin(c):
		return d.DecodeBytes()
	case msgpcode.IsExt(c):
		// The only extension gopyro sends: an object reference.
		return DecodeRef(d)
	}
	return d.DecodeInterfaceLoose()
}
