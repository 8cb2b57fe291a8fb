package pyro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"unicode/utf8"
)

// msgpack as Pyro's msgpack serializer writes it (use_bin_type=True):
// str and bin are distinct, tuples and sets travel as arrays, ints beyond
// 64 bits as ext type 0x31 (decimal ASCII).
const (
	extComplex  = 0x30
	extBigInt   = 0x31
	extDatetime = 0x32
	extDate     = 0x33
)

type msgpackReader struct {
	b []byte
	i int
}

func unmarshalMsgpack(b []byte) (any, error) {
	r := &msgpackReader{b: b}
	v, err := r.value(0)
	if err != nil {
		return nil, fmt.Errorf("msgpack: %w at offset %d", err, r.i)
	}
	if r.i != len(b) {
		return nil, fmt.Errorf("msgpack: %d bytes after the value", len(b)-r.i)
	}
	return v, nil
}

func (r *msgpackReader) need(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.i {
		return nil, errShort
	}
	s := r.b[r.i : r.i+n]
	r.i += n
	return s, nil
}

func (r *msgpackReader) uint(size int) (uint64, error) {
	s, err := r.need(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	}
	return binary.BigEndian.Uint64(s), nil
}

// count reads a container length and checks that the input could back it
// (every element takes at least one byte).
func (r *msgpackReader) count(size int, per int) (int, error) {
	n, err := r.uint(size)
	if err != nil {
		return 0, err
	}
	if n > uint64(len(r.b)-r.i)/uint64(per) {
		return 0, fmt.Errorf("a length of %d that the data cannot hold", n)
	}
	return int(n), nil
}

func (r *msgpackReader) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("nesting deeper than %d", MaxDepth)
	}
	s, err := r.need(1)
	if err != nil {
		return nil, err
	}
	c := s[0]
	switch {
	case c <= 0x7f:
		return boxInt(int64(c)), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c >= 0x80 && c <= 0x8f:
		return r.dict(int(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		return r.array(int(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		return r.str(int(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := r.count(1<<(c-0xc4), 1)
		if err != nil {
			return nil, err
		}
		s, _ := r.need(n)
		return append([]byte(nil), s...), nil
	case 0xca:
		u, err := r.uint(4)
		return float64(math.Float32frombits(uint32(u))), err
	case 0xcb:
		u, err := r.uint(8)
		return math.Float64frombits(u), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := r.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return new(big.Int).SetUint64(u), nil
		}
		return boxInt(int64(u)), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		u, err := r.uint(size)
		if err != nil {
			return nil, err
		}
		shift := 64 - 8*size
		return boxInt(int64(u<<shift) >> shift), nil
	case 0xd9, 0xda, 0xdb:
		n, err := r.count(1<<(c-0xd9), 1)
		if err != nil {
			return nil, err
		}
		return r.str(n)
	case 0xdc, 0xdd:
		n, err := r.count(2<<(c-0xdc), 1)
		if err != nil {
			return nil, err
		}
		return r.array(n, depth)
	case 0xde, 0xdf:
		n, err := r.count(2<<(c-0xde), 2)
		if err != nil {
			return nil, err
		}
		return r.dict(n, depth)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return r.ext(1 << (c - 0xd4))
	case 0xc7, 0xc8, 0xc9:
		n, err := r.count(1<<(c-0xc7), 1)
		if err != nil {
			return nil, err
		}
		return r.ext(n)
	}
	return nil, fmt.Errorf("invalid code 0x%02x", c)
}

func (r *msgpackReader) str(n int) (any, error) {
	s, err := r.need(n)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(s) {
		return nil, errors.New("a str that is not UTF-8")
	}
	return string(s), nil
}

func (r *msgpackReader) array(n int, depth int) (any, error) {
	if n > len(r.b)-r.i {
		return nil, errShort
	}
	out := make([]any, n)
	for k := range out {
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

func (r *msgpackReader) dict(n int, depth int) (any, error) {
	if 2*n > len(r.b)-r.i {
		return nil, errShort
	}
	d := make(Dict, 0, n)
	for range n {
		k, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if kl, ok := k.([]any); ok { // a tuple key travels as an array
			k = Tuple(kl)
		}
		if !hashable(k) {
			return nil, fmt.Errorf("unhashable %s as a dict key", TypeName(k))
		}
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		d = append(d, Item{k, v})
	}
	return d, nil
}

func (r *msgpackReader) ext(n int) (any, error) {
	t, err := r.need(1)
	if err != nil {
		return nil, err
	}
	s, err := r.need(n)
	if err != nil {
		return nil, err
	}
	switch t[0] {
	case extBigInt:
		if len(s) > MaxIntDigits+1 {
			return nil, fmt.Errorf("an integer of %d digits", len(s))
		}
		b, ok := new(big.Int).SetString(string(s), 10)
		if !ok {
			return nil, fmt.Errorf("malformed big int %q", clip(string(s), 40))
		}
		return normInt(b), nil
	case extComplex:
		return nil, errors.New("complex numbers are not supported")
	case extDatetime:
		if len(s) != 8 {
			return nil, errors.New("malformed datetime")
		}
		return math.Float64frombits(binary.BigEndian.Uint64(s)), nil // a timestamp
	case extDate:
		if len(s) != 8 {
			return nil, errors.New("malformed date")
		}
		return int64(binary.BigEndian.Uint64(s)), nil // a proleptic ordinal
	}
	return nil, fmt.Errorf("unknown ext type 0x%02x", t[0])
}

type msgpackWriter struct{ b []byte }

// head writes a str, array or map header: fix is the fix form's base
// (fixMax its largest count), b8, b16 and b32 the sized forms' codes (b8 0
// where there is none).
func (w *msgpackWriter) head(fix byte, fixMax int, b8, b16, b32 byte, n int) {
	switch {
	case n <= fixMax:
		w.b = append(w.b, fix|byte(n))
	case b8 != 0 && n <= math.MaxUint8:
		w.b = append(w.b, b8, byte(n))
	case n <= math.MaxUint16:
		w.b = append(w.b, b16)
		w.b = binary.BigEndian.AppendUint16(w.b, uint16(n))
	default:
		w.b = append(w.b, b32)
		w.b = binary.BigEndian.AppendUint32(w.b, uint32(n))
	}
}

func (w *msgpackWriter) value(v any, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("nesting deeper than %d", MaxDepth)
	}
	switch v := v.(type) {
	case nil:
		w.b = append(w.b, 0xc0)
	case bool:
		if v {
			w.b = append(w.b, 0xc3)
		} else {
			w.b = append(w.b, 0xc2)
		}
	case int:
		return w.value(int64(v), depth)
	case int64:
		// The shortest form, as Python's msgpack writes it.
		switch {
		case v >= -32 && v <= 127:
			w.b = append(w.b, byte(int8(v)))
		case v >= 0 && v <= math.MaxUint8:
			w.b = append(w.b, 0xcc, byte(v))
		case v >= 0 && v <= math.MaxUint16:
			w.b = append(w.b, 0xcd, byte(v>>8), byte(v))
		case v >= 0 && v <= math.MaxUint32:
			w.b = append(w.b, 0xce)
			w.b = binary.BigEndian.AppendUint32(w.b, uint32(v))
		case v >= math.MinInt8 && v < 0:
			w.b = append(w.b, 0xd0, byte(v))
		case v >= math.MinInt16 && v < 0:
			w.b = append(w.b, 0xd1, byte(v>>8), byte(v))
		case v >= math.MinInt32 && v < 0:
			w.b = append(w.b, 0xd2)
			w.b = binary.BigEndian.AppendUint32(w.b, uint32(v))
		default:
			w.b = append(w.b, 0xd3)
			w.b = binary.BigEndian.AppendUint64(w.b, uint64(v))
		}
	case uint64:
		w.b = append(w.b, 0xcf)
		w.b = binary.BigEndian.AppendUint64(w.b, v)
	case *big.Int:
		if v.IsInt64() {
			return w.value(v.Int64(), depth)
		}
		if v.IsUint64() {
			return w.value(v.Uint64(), depth)
		}
		s := v.String() // at most MaxIntDigits+1 bytes
		if len(s) <= math.MaxUint8 {
			w.b = append(w.b, 0xc7, byte(len(s)), extBigInt)
		} else {
			w.b = append(w.b, 0xc8)
			w.b = binary.BigEndian.AppendUint16(w.b, uint16(len(s)))
			w.b = append(w.b, extBigInt)
		}
		w.b = append(w.b, s...)
	case float64:
		w.b = append(w.b, 0xcb)
		w.b = binary.BigEndian.AppendUint64(w.b, math.Float64bits(v))
	case string:
		w.head(0xa0, 31, 0xd9, 0xda, 0xdb, len(v))
		w.b = append(w.b, v...)
	case []byte:
		switch n := len(v); {
		case n <= math.MaxUint8:
			w.b = append(w.b, 0xc4, byte(n))
		case n <= math.MaxUint16:
			w.b = append(w.b, 0xc5)
			w.b = binary.BigEndian.AppendUint16(w.b, uint16(n))
		default:
			w.b = append(w.b, 0xc6)
			w.b = binary.BigEndian.AppendUint32(w.b, uint32(n))
		}
		w.b = append(w.b, v...)
	case []any:
		return w.seq(v, depth)
	case Tuple:
		return w.seq(v, depth)
	case Set:
		return w.seq(v, depth)
	case Dict:
		w.head(0x80, 15, 0, 0xde, 0xdf, len(v))
		for _, it := range v {
			if err := w.value(it.Key, depth+1); err != nil {
				return err
			}
			if err := w.value(it.Value, depth+1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("cannot serialize %T", v)
	}
	return nil
}

func (w *msgpackWriter) seq(items []any, depth int) error {
	w.head(0x90, 15, 0, 0xdc, 0xdd, len(items))
	w.b = slices.Grow(w.b, 3*len(items)) // one growth for most lists
	for _, it := range items {
		if err := w.value(it, depth+1); err != nil {
			return err
		}
	}
	return nil
}
