package wire

import (
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

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
