package pyro

import (
	"fmt"
	"math/big"
)

// Python values in Go form, as the decoders produce them and the encoders
// take them:
//
//	None        nil
//	bool        bool
//	int         int64, or *big.Int beyond 64 bits
//	float       float64
//	str         string
//	bytes       []byte
//	list        []any
//	tuple       Tuple
//	set         Set
//	dict        Dict (insertion order kept)
type (
	// Tuple is a Python tuple.
	Tuple []any
	// Set is a Python set (or frozenset).
	Set []any
	// Dict is a Python dict, in insertion order.
	Dict []Item
)

// Item is one key and value of a Dict.
type Item struct{ Key, Value any }

// Get returns the value under the string key k.
func (d Dict) Get(k string) (any, bool) {
	for _, it := range d {
		if s, ok := it.Key.(string); ok && s == k {
			return it.Value, true
		}
	}
	return nil, false
}

// Str returns the string under key k, "" when absent or not a string.
func (d Dict) Str(k string) string {
	v, _ := d.Get(k)
	s, _ := v.(string)
	return s
}

// Class returns the value of the "__class__" key of a class dict: the way
// Pyro's serializers write objects (URIs, proxies, exceptions).
func (d Dict) Class() string { return d.Str("__class__") }

// MaxDepth bounds the nesting of decoded values.
const MaxDepth = 100

// TypeName is the Python name of a value's type, for error messages.
func TypeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case []any:
		return "list"
	case Tuple:
		return "tuple"
	case Set:
		return "set"
	case Dict:
		if c := v.Class(); c != "" {
			return c
		}
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}

// Describe says what a value is, in a Python user's terms: `the str
// "abc"`, `the int 3`, `a list of 2 items`.
func Describe(v any) string {
	const max = 40
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int64:
		return fmt.Sprintf("the int %d", v)
	case *big.Int:
		return "the int " + clip(v.String(), max)
	case float64:
		return fmt.Sprintf("the float %v", v)
	case string:
		return fmt.Sprintf("the str %q", clip(v, max))
	case []byte:
		return fmt.Sprintf("bytes of length %d", len(v))
	case []any:
		return fmt.Sprintf("a list of %d items", len(v))
	case Tuple:
		return fmt.Sprintf("a tuple of %d items", len(v))
	case Set:
		return fmt.Sprintf("a set of %d items", len(v))
	case Dict:
		if c := v.Class(); c != "" {
			return "a " + c + " object"
		}
		return fmt.Sprintf("a dict of %d items", len(v))
	}
	return fmt.Sprintf("%T", v)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// boxedInts holds the ints from -1024 to 4095 as interface values, made
// once: decoding a list of small ints allocates nothing per item.
var boxedInts = func() (t [5120]any) {
	for i := range t {
		t[i] = int64(i - 1024)
	}
	return t
}()

// boxInt returns v as an interface value, shared for small ints.
func boxInt(v int64) any {
	if v >= -1024 && v < 4096 {
		return boxedInts[v+1024]
	}
	return v
}
