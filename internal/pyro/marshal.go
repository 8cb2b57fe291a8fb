package pyro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// Python's marshal format (versions 2 to 4), the subset that carries data:
// no code objects. Version 3's back-references (FLAG_REF, TYPE_REF) are
// followed, and what they would expand to is bounded.

const marshalFlagRef = 0x80

type marshalReader struct {
	b    []byte
	i    int
	refs []any
	// expanded counts the values the decoded tree holds, references
	// expanded: a payload of references to one big list must not turn into
	// an unbounded amount of work for whoever walks the result.
	expanded, limit int
	sizes           []int  // per ref: the values it holds
	done            []bool // per ref: read to its end
}

func unmarshalMarshal(b []byte) (any, error) {
	r := &marshalReader{b: b, limit: 8*len(b) + 1024}
	v, _, err := r.value(0)
	if err != nil {
		return nil, fmt.Errorf("marshal: %w at offset %d", err, r.i)
	}
	if r.i != len(b) {
		return nil, fmt.Errorf("marshal: %d bytes after the value", len(b)-r.i)
	}
	return v, nil
}

var errShort = errors.New("truncated data")

func (r *marshalReader) need(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.i {
		return nil, errShort
	}
	s := r.b[r.i : r.i+n]
	r.i += n
	return s, nil
}

func (r *marshalReader) u8() (int, error) {
	s, err := r.need(1)
	if err != nil {
		return 0, err
	}
	return int(s[0]), nil
}

func (r *marshalReader) i32() (int, error) {
	s, err := r.need(4)
	if err != nil {
		return 0, err
	}
	return int(int32(binary.LittleEndian.Uint32(s))), nil
}

// count reads a container length and checks the input could back it.
func (r *marshalReader) count(small bool) (int, error) {
	var n int
	var err error
	if small {
		n, err = r.u8()
	} else {
		n, err = r.i32()
	}
	if err != nil {
		return 0, err
	}
	if n < 0 || n > len(r.b)-r.i {
		return 0, fmt.Errorf("a length of %d that the data cannot hold", n)
	}
	return n, nil
}

// value returns a value and how many values it holds.
func (r *marshalReader) value(depth int) (any, int, error) {
	if depth > MaxDepth {
		return nil, 0, fmt.Errorf("nesting deeper than %d", MaxDepth)
	}
	code, err := r.u8()
	if err != nil {
		return nil, 0, err
	}
	flag := code&marshalFlagRef != 0
	code &^= marshalFlagRef
	slot := -1
	if flag {
		slot = len(r.refs)
		r.refs = append(r.refs, nil)
		r.sizes = append(r.sizes, 1)
		r.done = append(r.done, false)
	}
	v, size, err := r.body(byte(code), depth)
	if err != nil {
		return nil, 0, err
	}
	if slot >= 0 {
		r.refs[slot], r.sizes[slot], r.done[slot] = v, size, true
	}
	r.expanded += size
	if r.expanded > r.limit {
		return nil, 0, fmt.Errorf("references expand to more than %d values", r.limit)
	}
	return v, size, nil
}

func (r *marshalReader) body(code byte, depth int) (any, int, error) {
	switch code {
	case 'N':
		return nil, 1, nil
	case 'T':
		return true, 1, nil
	case 'F':
		return false, 1, nil
	case 'i':
		n, err := r.i32()
		return boxInt(int64(n)), 1, err
	case 'l':
		n, err := r.i32()
		if err != nil {
			return nil, 0, err
		}
		neg := n < 0
		if neg {
			n = -n
		}
		if n > (MaxIntDigits+3)/4 || n < 0 {
			return nil, 0, fmt.Errorf("an integer of %d digits", n)
		}
		s, err := r.need(2 * n)
		if err != nil {
			return nil, 0, err
		}
		b := new(big.Int)
		for k := n - 1; k >= 0; k-- {
			b.Lsh(b, 15)
			b.Or(b, big.NewInt(int64(binary.LittleEndian.Uint16(s[2*k:]))))
		}
		if neg {
			b.Neg(b)
		}
		return normInt(b), 1, nil
	case 'g':
		s, err := r.need(8)
		if err != nil {
			return nil, 0, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(s)), 1, nil
	case 'f':
		n, err := r.u8()
		if err != nil {
			return nil, 0, err
		}
		s, err := r.need(n)
		if err != nil {
			return nil, 0, err
		}
		f, err := strconv.ParseFloat(string(s), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, 0, fmt.Errorf("malformed float %q", s)
		}
		return f, 1, nil
	case 's':
		n, err := r.count(false)
		if err != nil {
			return nil, 0, err
		}
		s, _ := r.need(n)
		return append([]byte(nil), s...), 1, nil
	case 'u', 't', 'a', 'A', 'z', 'Z':
		n, err := r.count(code == 'z' || code == 'Z')
		if err != nil {
			return nil, 0, err
		}
		s, _ := r.need(n)
		if !utf8.Valid(s) {
			return nil, 0, errors.New("a str that is not UTF-8")
		}
		return string(s), 1, nil
	case '(', ')', '[', '<', '>':
		n, err := r.count(code == ')')
		if err != nil {
			return nil, 0, err
		}
		items := make([]any, n)
		size := 1
		for k := range items {
			v, sz, err := r.value(depth + 1)
			if err != nil {
				return nil, 0, err
			}
			items[k] = v
			size += sz
		}
		switch code {
		case '[':
			return items, size, nil
		case '<', '>':
			return Set(items), size, nil
		}
		return Tuple(items), size, nil
	case '{':
		var d Dict
		size := 1
		for {
			if r.i < len(r.b) && r.b[r.i] == '0' {
				r.i++
				if d == nil {
					d = Dict{}
				}
				return d, size, nil
			}
			k, ks, err := r.value(depth + 1)
			if err != nil {
				return nil, 0, err
			}
			if !hashable(k) {
				return nil, 0, fmt.Errorf("unhashable %s as a dict key", TypeName(k))
			}
			v, vs, err := r.value(depth + 1)
			if err != nil {
				return nil, 0, err
			}
			d = append(d, Item{k, v})
			size += ks + vs
		}
	case 'r':
		n, err := r.i32()
		if err != nil {
			return nil, 0, err
		}
		if n < 0 || n >= len(r.refs) || !r.done[n] {
			return nil, 0, fmt.Errorf("a reference to %d, which is not (yet) defined", n)
		}
		return r.refs[n], r.sizes[n], nil
	case 'y', 'x':
		return nil, 0, errors.New("complex numbers are not supported")
	case 'c':
		return nil, 0, errors.New("code objects are refused")
	}
	return nil, 0, fmt.Errorf("unknown type code %q", code)
}

// marshalWriter writes values in marshal version 2 form, which every
// Python 3 reads.
type marshalWriter struct{ b []byte }

func (w *marshalWriter) i32(n int) { w.b = binary.LittleEndian.AppendUint32(w.b, uint32(int32(n))) }

func (w *marshalWriter) value(v any, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("nesting deeper than %d", MaxDepth)
	}
	switch v := v.(type) {
	case nil:
		w.b = append(w.b, 'N')
	case bool:
		if v {
			w.b = append(w.b, 'T')
		} else {
			w.b = append(w.b, 'F')
		}
	case int:
		return w.value(int64(v), depth)
	case int64:
		if v >= math.MinInt32 && v <= math.MaxInt32 {
			w.b = append(w.b, 'i')
			w.i32(int(v))
			return nil
		}
		w.bigInt(big.NewInt(v))
	case uint64:
		w.bigInt(new(big.Int).SetUint64(v))
	case *big.Int:
		w.bigInt(v)
	case float64:
		w.b = append(w.b, 'g')
		w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(v))
	case string:
		w.b = append(w.b, 'u')
		w.i32(len(v))
		w.b = append(w.b, v...)
	case []byte:
		w.b = append(w.b, 's')
		w.i32(len(v))
		w.b = append(w.b, v...)
	case []any:
		return w.seq('[', v, depth)
	case Tuple:
		return w.seq('(', v, depth)
	case Set:
		return w.seq('<', v, depth)
	case Dict:
		w.b = append(w.b, '{')
		for _, it := range v {
			if err := w.value(it.Key, depth+1); err != nil {
				return err
			}
			if err := w.value(it.Value, depth+1); err != nil {
				return err
			}
		}
		w.b = append(w.b, '0')
	default:
		return fmt.Errorf("cannot serialize %T", v)
	}
	return nil
}

func (w *marshalWriter) seq(code byte, items []any, depth int) error {
	w.b = append(w.b, code)
	w.i32(len(items))
	for _, it := range items {
		if err := w.value(it, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (w *marshalWriter) bigInt(v *big.Int) {
	w.b = append(w.b, 'l')
	abs := new(big.Int).Abs(v)
	var digits []uint16
	mask := big.NewInt(1<<15 - 1)
	for abs.Sign() > 0 {
		digits = append(digits, uint16(new(big.Int).And(abs, mask).Int64()))
		abs.Rsh(abs, 15)
	}
	n := len(digits)
	if v.Sign() < 0 {
		n = -n
	}
	w.i32(n)
	for _, d := range digits {
		w.b = binary.LittleEndian.AppendUint16(w.b, d)
	}
}
