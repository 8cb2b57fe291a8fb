package wire

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// ArgError describes an argument or result that does not fit its declared
// type.
type ArgError struct {
	Index  int    // position in the array, from 0 (printed from 1)
	Type   string // the declared Go type
	Msg    string
	Result bool // a result, not an argument
}

func (e *ArgError) Error() string {
	what := "argument"
	if e.Result {
		what = "result"
	}
	return fmt.Sprintf("%s %d (%s): %s", what, e.Index+1, e.Type, e.Msg)
}

// Decoder reads one validated msgpack array into declared Go types. Create
// it with [NewDecoder] after [Validate] succeeded on the bytes.
type Decoder struct {
	src     []byte
	r       bytes.Reader
	dec     *msgpack.Decoder
	n       int
	alias   bool
	results bool // errors name results, not arguments
}

// Results makes the decoder's errors speak of results, not arguments.
func (d *Decoder) Results() { d.results = true }

// NewDecoder starts decoding the array in b, which must have passed
// [Validate]. It reads the array header; [Decoder.Len] is its length.
func NewDecoder(b []byte) (*Decoder, error) {
	d := decPool.Get().(*Decoder)
	d.src, d.alias, d.results = b, false, false
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
				return &ArgError{Index: index, Type: v.Type().String(), Msg: err.Error(), Result: d.results}
			}
			if v.Kind() == reflect.Interface {
				v.Set(reflect.ValueOf(b))
			} else {
				v.SetBytes(b)
			}
			return nil
		}
	}
	start := len(d.src) - d.r.Len()
	err := decodeArg(d.dec, index, v)
	if ae, ok := errors.AsType[*ArgError](err); ok {
		ae.Result = d.results
		if strings.Contains(ae.Msg, "msgpack") && start < len(d.src) {
			// A mismatch found by the codec: say what was wanted and what
			// came, in the caller's terms, not the codec's.
			if isStreamAt(d.src[start:]) {
				ae.Msg = "the value is a stream: read it with proxy.Stream (or bind a field returning iter.Seq2[T, error])"
			} else {
				ae.Msg = "want " + wantOf(v.Type()) + ", got " + describeAt(d.src[start:])
			}
		}
	}
	return err
}

// decodeArg decodes the next value into v, reporting any failure (a panic
// in msgpack included) as an *ArgError for index.
func decodeArg(d *msgpack.Decoder, index int, v reflect.Value) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ArgError{Index: index, Type: v.Type().String(), Msg: fmt.Sprint("cannot decode (msgpack): ", r)}
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

// wantOf says in words what a value of Go type t must be.
func wantOf(t reflect.Type) string {
	if _, ok := refTypeOf(t); ok {
		return "an object reference (pass a daemon.Ref or a *proxy.Proxy)"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
		return "a list"
	case reflect.Array:
		return fmt.Sprintf("a list of %d", t.Len())
	case reflect.Map, reflect.Struct:
		return "a map"
	case reflect.Func, reflect.Chan:
		if t.Kind() == reflect.Func && t.NumIn() == 1 && t.NumOut() == 0 {
			return "a stream (read it with proxy.Stream)"
		}
	}
	return "a " + t.String()
}

// isStreamAt reports that b starts with a stream chunk.
func isStreamAt(b []byte) bool {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	if c, err := dec.PeekCode(); err != nil || !msgpcode.IsExt(c) {
		return false
	}
	id, _, err := dec.DecodeExtHeader()
	return err == nil && id == StreamExt
}

// describeAt says in words what the msgpack value at the start of b is.
func describeAt(b []byte) string {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	v, err := decodeLoose(dec, 0)
	if err != nil {
		if c, perr := msgpack.NewDecoder(bytes.NewReader(b)).PeekCode(); perr == nil && msgpcode.IsExt(c) {
			return "an extension value (a stream or a reference)"
		}
		return "a value it cannot read"
	}
	switch x := v.(type) {
	case nil:
		return "nil"
	case bool:
		return fmt.Sprint(x)
	case string:
		return "the string " + gopyro.Clip(x)
	case int64, uint64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the number %g", x)
	case []byte:
		return fmt.Sprintf("%d bytes", len(x))
	case []any:
		return fmt.Sprintf("a list of %d", len(x))
	case map[string]any:
		return fmt.Sprintf("a map of %d", len(x))
	case map[any]any:
		return fmt.Sprintf("a map of %d", len(x))
	case gopyro.URI:
		return "a reference to " + x.String()
	}
	return fmt.Sprintf("a %T", v)
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

// aliasMin is the size from which an aliasing decoder shares a bin value's
// memory instead of copying it.
const aliasMin = 64 << 10

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
	if n < aliasMin {
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
