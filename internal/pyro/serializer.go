package pyro

import (
	"errors"
	"fmt"
)

// Format is a serializer.
type Format uint8

// The serializers gopyro speaks.
const (
	Serpent Format = iota + 1
	JSON
	Marshal
	Msgpack
)

func (f Format) String() string {
	switch f {
	case Serpent:
		return "serpent"
	case JSON:
		return "json"
	case Marshal:
		return "marshal"
	case Msgpack:
		return "msgpack"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// ParseFormat returns the serializer called name.
func ParseFormat(name string) (Format, error) {
	for _, f := range []Format{Serpent, JSON, Marshal, Msgpack} {
		if f.String() == name {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown serializer %q (want serpent, json, marshal or msgpack)", name)
}

// Unmarshal decodes one value.
func (f Format) Unmarshal(b []byte) (any, error) {
	switch f {
	case Serpent:
		s := string(b)
		if len(s) > 0 && s[0] == '#' { // the "# serpent utf-8 ..." line
			i := 0
			for i < len(s) && s[i] != '\n' {
				i++
			}
			s = s[i:]
		}
		p := &literalParser{s: s}
		return p.parseDocument()
	case JSON:
		p := &literalParser{s: string(b), json: true}
		return p.parseDocument()
	case Marshal:
		return unmarshalMarshal(b)
	case Msgpack:
		return unmarshalMsgpack(b)
	}
	return nil, fmt.Errorf("unknown serializer %d", f)
}

// Marshal encodes one value.
func (f Format) Marshal(v any) ([]byte, error) {
	return f.Append(nil, v)
}

// Append encodes one value after dst.
func (f Format) Append(dst []byte, v any) ([]byte, error) {
	var err error
	switch f {
	case Serpent:
		w := literalWriter{b: append(dst, serpentHeader...)}
		err = w.value(v, 0)
		dst = w.b
	case JSON:
		w := literalWriter{b: dst, json: true}
		err = w.value(v, 0)
		dst = w.b
	case Marshal:
		w := marshalWriter{b: dst}
		err = w.value(v, 0)
		dst = w.b
	case Msgpack:
		w := msgpackWriter{b: dst}
		err = w.value(v, 0)
		dst = w.b
	default:
		err = fmt.Errorf("unknown serializer %d", f)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	return dst, nil
}

// Call is a decoded MSG_INVOKE payload.
type Call struct {
	Object, Method string
	Args           []any
	Kwargs         Dict
}

// DecodeCall decodes an INVOKE payload: (object, method, args, kwargs),
// a JSON object with those four keys for json.
func (f Format) DecodeCall(b []byte) (Call, error) {
	v, err := f.Unmarshal(b)
	if err != nil {
		return Call{}, err
	}
	var parts []any
	if f == JSON {
		d, ok := v.(Dict)
		if !ok {
			return Call{}, fmt.Errorf("json: a call is an object, got %s", Describe(v))
		}
		for _, k := range []string{"object", "method", "params", "kwargs"} {
			x, _ := d.Get(k)
			parts = append(parts, x)
		}
	} else {
		parts = seqOf(v)
		if len(parts) != 4 {
			return Call{}, fmt.Errorf("%s: a call is (object, method, args, kwargs), got %s", f, Describe(v))
		}
	}
	var c Call
	var ok bool
	if c.Object, ok = parts[0].(string); !ok {
		return Call{}, fmt.Errorf("%s: the object id is %s, want a str", f, Describe(parts[0]))
	}
	if c.Method, ok = parts[1].(string); !ok {
		return Call{}, fmt.Errorf("%s: the method name is %s, want a str", f, Describe(parts[1]))
	}
	if parts[2] != nil {
		if c.Args = seqOf(parts[2]); c.Args == nil && !isSeq(parts[2]) {
			return Call{}, fmt.Errorf("%s: the arguments are %s, want a tuple", f, Describe(parts[2]))
		}
	}
	switch kw := parts[3].(type) {
	case nil:
	case Dict:
		for _, it := range kw {
			if _, ok := it.Key.(string); !ok {
				return Call{}, fmt.Errorf("%s: a keyword argument named by %s", f, Describe(it.Key))
			}
		}
		c.Kwargs = kw
	default:
		return Call{}, fmt.Errorf("%s: the keyword arguments are %s, want a dict", f, Describe(parts[3]))
	}
	return c, nil
}

// EncodeCall encodes an INVOKE payload.
func (f Format) EncodeCall(c Call) ([]byte, error) {
	args := c.Args
	if args == nil {
		args = []any{}
	}
	kw := c.Kwargs
	if kw == nil {
		kw = Dict{}
	}
	if f == JSON {
		return f.Marshal(Dict{{"object", c.Object}, {"method", c.Method}, {"params", args}, {"kwargs", kw}})
	}
	return f.Marshal(Tuple{c.Object, c.Method, Tuple(args), kw})
}

// seqOf returns the items of a list, tuple or set; nil for anything else.
func seqOf(v any) []any {
	switch v := v.(type) {
	case []any:
		return v
	case Tuple:
		return v
	case Set:
		return v
	}
	return nil
}

func isSeq(v any) bool {
	switch v.(type) {
	case []any, Tuple, Set:
		return true
	}
	return false
}

// errNotAccepted is Pyro's refusal of a serializer, word for word.
var errNotAccepted = errors.New("message used serializer that is not accepted")
