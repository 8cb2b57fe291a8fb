package pyro

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/gopyro/gopyro"
)

// Hooks let the daemon and the proxy take part in conversions: references
// to remote objects travel as Pyro URI and Proxy objects.
type Hooks struct {
	// NewRef returns a value of reference type t (daemon.Ref, *proxy.Proxy)
	// for the object at uri; ok is false when t is not a reference type.
	NewRef func(t reflect.Type, uri gopyro.URI) (v reflect.Value, ok bool)
	// RefOf reports whether v is a reference, or an object its daemon
	// serves, and returns what a Python proxy for it needs.
	RefOf func(v reflect.Value) (Proxied, bool)
}

// Proxied is what a Python client needs to call an object: its URI and
// the metadata its proxy checks calls against.
type Proxied struct {
	URI             gopyro.URI
	Methods, Oneway []string
}

var (
	uriType  = reflect.TypeFor[gopyro.URI]()
	timeType = reflect.TypeFor[time.Time]()
	bigType  = reflect.TypeFor[*big.Int]()
)

// ConvError is a value that does not fit the Go type it is assigned to.
type ConvError struct {
	Path string // "", "[2]", ".Name", `["key"]`: where inside the value
	Want string // what the Go type needs, in Python terms
	Got  string // what came (see Describe)
}

func (e *ConvError) Error() string {
	where := ""
	if e.Path != "" {
		where = " at " + e.Path
	}
	return fmt.Sprintf("want %s%s, got %s", e.Want, where, e.Got)
}

type converter struct {
	p     *Protocol
	hooks *Hooks
	uris  bool // natural: URI objects as gopyro.URI, not strings
}

// Assign converts the Python value v into dst, a settable value of the Go
// type a method declares, with range checks.
func Assign(p *Protocol, h *Hooks, v any, dst reflect.Value) error {
	c := converter{p: p, hooks: h}
	return c.assign(v, dst, "", 0)
}

func wantOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an int (" + t.String() + ")"
	case reflect.Float32, reflect.Float64:
		return "a float"
	case reflect.String:
		return "a str"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
		return "a list"
	case reflect.Array:
		return fmt.Sprintf("a list of %d items", t.Len())
	case reflect.Map, reflect.Struct:
		return "a dict"
	}
	return t.String()
}

func (c converter) fail(dst reflect.Value, v any, path string) error {
	return &ConvError{Path: path, Want: wantOf(dst.Type()), Got: Describe(v)}
}

func (c converter) assign(v any, dst reflect.Value, path string, depth int) error {
	if depth > MaxDepth {
		return &ConvError{Path: path, Want: "less nesting", Got: fmt.Sprintf("more than %d levels", MaxDepth)}
	}
	t := dst.Type()
	if c.hooks != nil && c.hooks.NewRef != nil {
		if _, ok := c.hooks.NewRef(t, gopyro.URI{}); ok {
			if v == nil {
				dst.SetZero()
				return nil
			}
			u, err := c.uriOf(v)
			if err != nil {
				return &ConvError{Path: path, Want: "a Pyro URI or proxy", Got: Describe(v)}
			}
			r, _ := c.hooks.NewRef(t, u)
			dst.Set(r)
			return nil
		}
	}
	switch t {
	case uriType:
		u, err := c.uriOf(v)
		if err != nil {
			return &ConvError{Path: path, Want: "a Pyro URI", Got: Describe(v) + " (" + err.Error() + ")"}
		}
		dst.Set(reflect.ValueOf(u))
		return nil
	case bigType:
		switch v := v.(type) {
		case int64:
			dst.Set(reflect.ValueOf(big.NewInt(v)))
		case *big.Int:
			dst.Set(reflect.ValueOf(v))
		case nil:
			dst.SetZero()
		default:
			return c.fail(dst, v, path)
		}
		return nil
	case timeType:
		switch x := v.(type) {
		case string:
			tm, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				if tm, err = time.Parse("2006-01-02T15:04:05.999999", x); err != nil {
					return &ConvError{Path: path, Want: "an ISO 8601 time", Got: Describe(v)}
				}
			}
			dst.Set(reflect.ValueOf(tm))
		case float64:
			sec, frac := math.Modf(x)
			dst.Set(reflect.ValueOf(time.Unix(int64(sec), int64(frac*1e9))))
		default:
			return &ConvError{Path: path, Want: "an ISO 8601 time", Got: Describe(v)}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Interface:
		if v == nil {
			dst.SetZero()
			return nil
		}
		n := c.natural(v)
		nv := reflect.ValueOf(n)
		if !nv.Type().AssignableTo(t) {
			return c.fail(dst, v, path)
		}
		dst.Set(nv)
		return nil
	case reflect.Pointer:
		if v == nil {
			dst.SetZero()
			return nil
		}
		p := reflect.New(t.Elem())
		if err := c.assign(v, p.Elem(), path, depth+1); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	case reflect.Bool:
		// A number or None stands for its truth value, as in Python
		// (Pyro5's own PYRONAME resolution passes 0 for False).
		switch x := v.(type) {
		case bool:
			dst.SetBool(x)
		case int64:
			dst.SetBool(x != 0)
		case float64:
			dst.SetBool(x != 0)
		case nil:
			dst.SetBool(false)
		default:
			return c.fail(dst, v, path)
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(int64)
		if !ok || dst.OverflowInt(n) {
			if ok || isBig(v) {
				return &ConvError{Path: path, Want: "an int that fits " + t.String(), Got: Describe(v)}
			}
			return c.fail(dst, v, path)
		}
		dst.SetInt(n)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var u uint64
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return &ConvError{Path: path, Want: "an int that fits " + t.String(), Got: Describe(v)}
			}
			u = uint64(x)
		case *big.Int:
			if !x.IsUint64() {
				return &ConvError{Path: path, Want: "an int that fits " + t.String(), Got: Describe(v)}
			}
			u = x.Uint64()
		default:
			return c.fail(dst, v, path)
		}
		if dst.OverflowUint(u) {
			return &ConvError{Path: path, Want: "an int that fits " + t.String(), Got: Describe(v)}
		}
		dst.SetUint(u)
		return nil
	case reflect.Float32, reflect.Float64:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		case *big.Int:
			f, _ = new(big.Float).SetInt(x).Float64()
		case Dict: // serpent's NaN
			if x.Class() != "float" || x.Str("value") != "nan" {
				return c.fail(dst, v, path)
			}
			f = math.NaN()
		default:
			return c.fail(dst, v, path)
		}
		if t.Kind() == reflect.Float32 && !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
			return &ConvError{Path: path, Want: "a float that fits float32", Got: Describe(v)}
		}
		dst.SetFloat(f)
		return nil
	case reflect.String:
		switch x := v.(type) {
		case string:
			dst.SetString(x)
		case Dict:
			if !strings.HasSuffix(x.Class(), ".core.URI") {
				return c.fail(dst, v, path)
			}
			u, err := c.uriOf(x)
			if err != nil {
				return c.fail(dst, v, path)
			}
			dst.SetString(u.String())
		default:
			return c.fail(dst, v, path)
		}
		return nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			b, ok := bytesOf(v)
			if !ok {
				if v == nil {
					dst.SetZero()
					return nil
				}
				return c.fail(dst, v, path)
			}
			dst.SetBytes(b)
			return nil
		}
		if v == nil {
			dst.SetZero()
			return nil
		}
		items := seqOf(v)
		if items == nil && !isSeq(v) {
			return c.fail(dst, v, path)
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			if err := c.assign(it, s.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		dst.Set(s)
		return nil
	case reflect.Array:
		items := seqOf(v)
		if t.Elem().Kind() == reflect.Uint8 {
			if b, ok := bytesOf(v); ok {
				items = nil
				for _, x := range b {
					items = append(items, int64(x))
				}
			}
		}
		if len(items) != t.Len() {
			return c.fail(dst, v, path)
		}
		for i, it := range items {
			if err := c.assign(it, dst.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if v == nil {
			dst.SetZero()
			return nil
		}
		d, ok := v.(Dict)
		if !ok {
			return c.fail(dst, v, path)
		}
		m := reflect.MakeMapWithSize(t, len(d))
		for _, it := range d {
			k := reflect.New(t.Key()).Elem()
			kp := fmt.Sprintf("%s[%s]", path, keyText(it.Key))
			if err := c.assign(it.Key, k, kp+" (key)", depth+1); err != nil {
				return err
			}
			e := reflect.New(t.Elem()).Elem()
			if err := c.assign(it.Value, e, kp, depth+1); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		dst.Set(m)
		return nil
	case reflect.Struct:
		d, ok := v.(Dict)
		if !ok {
			return c.fail(dst, v, path)
		}
		return c.assignStruct(d, dst, path, depth)
	}
	return &ConvError{Path: path, Want: t.String(), Got: Describe(v)}
}

func isBig(v any) bool { _, ok := v.(*big.Int); return ok }

func keyText(k any) string {
	if s, ok := k.(string); ok {
		return fmt.Sprintf("%q", clip(s, 40))
	}
	return clip(fmt.Sprint(k), 40)
}

// bytesOf accepts bytes as each serializer carries them: bytes, serpent's
// base64 dict, and (for json, which cannot carry bytes) nothing else.
func bytesOf(v any) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return x, true
	case Dict:
		if len(x) == 2 && x.Str("encoding") == "base64" {
			b, err := base64.StdEncoding.DecodeString(x.Str("data"))
			return b, err == nil
		}
	}
	return nil, false
}

// AssignStruct fills the fields of struct dst from keyword arguments or a
// dict: by field name (exact, then any case, then snake_case) or by the
// name in a `pyro:"name"` tag.
func (c converter) assignStruct(d Dict, dst reflect.Value, path string, depth int) error {
	fields := structFields(dst.Type())
	for _, it := range d {
		k, ok := it.Key.(string)
		if !ok {
			return &ConvError{Path: path, Want: "str keys (field names)", Got: Describe(it.Key)}
		}
		f, ok := matchField(fields, k)
		if !ok {
			names := make([]string, len(fields))
			for i, f := range fields {
				names[i] = f.name
			}
			return &ConvError{Path: path, Want: "one of the fields " + strings.Join(names, ", "), Got: fmt.Sprintf("the key %q", clip(k, 40))}
		}
		if err := c.assign(it.Value, dst.FieldByIndex(f.index), path+"."+f.name, depth+1); err != nil {
			return err
		}
	}
	return nil
}

type field struct {
	name   string // on the wire
	goName string
	index  []int
}

func structFields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, _, _ := strings.Cut(f.Tag.Get("pyro"), ","); tag == "-" {
			continue
		} else if tag != "" {
			name = tag
		} else if tag, _, _ := strings.Cut(f.Tag.Get("msgpack"), ","); tag == "-" {
			continue
		} else if tag != "" {
			name = tag
		}
		out = append(out, field{name: name, goName: f.Name, index: f.Index})
	}
	return out
}

func matchField(fields []field, k string) (field, bool) {
	for _, f := range fields {
		if f.name == k {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, k) || strings.EqualFold(f.goName, k) || SnakeCase(f.goName) == k {
			return f, true
		}
	}
	return field{}, false
}

// SnakeCase converts a Go name: OnewayEcho -> oneway_echo, GetID -> get_id.
func SnakeCase(name string) string {
	r := []rune(name)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 {
				prev := r[i-1]
				nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
				if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
					b.WriteByte('_')
				}
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Natural converts a Python value to plain Go values: []any for lists,
// tuples and sets, map[string]any for dicts with str keys (map[any]any
// otherwise), gopyro.URI for URI and Proxy objects; numbers, strings,
// bytes, bools and nil as they are.
func Natural(p *Protocol, v any) any {
	return converter{p: p, uris: true}.natural(v)
}

// natural converts a Python value to the Go value an `any` parameter
// receives: lists for tuples and sets, maps for dicts, strings for URIs
// (gopyro.URI with c.uris).
func (c converter) natural(v any) any {
	switch x := v.(type) {
	case []any:
		// Copied only when an item changes: plain items stay as they are.
		var out []any
		for i, e := range x {
			n := c.natural(e)
			if out == nil && !sameValue(n, e) {
				out = slices.Clone(x[:i:i])
				out = append(out, make([]any, len(x)-i)...)
			}
			if out != nil {
				out[i] = n
			}
		}
		if out == nil {
			return x
		}
		return out
	case Tuple:
		return c.natural([]any(x))
	case Set:
		return c.natural([]any(x))
	case Dict:
		if cls := x.Class(); strings.HasSuffix(cls, ".core.URI") || (c.uris && strings.HasSuffix(cls, ".Proxy")) {
			if u, err := c.uriOf(x); err == nil {
				if c.uris {
					return u
				}
				return u.String()
			}
		}
		allStr := true
		for _, it := range x {
			if _, ok := it.Key.(string); !ok {
				allStr = false
			}
		}
		if allStr {
			m := make(map[string]any, len(x))
			for _, it := range x {
				m[it.Key.(string)] = c.natural(it.Value)
			}
			return m
		}
		m := make(map[any]any, len(x))
		for _, it := range x {
			k := it.Key
			if t, ok := k.(Tuple); ok { // Go map keys cannot be slices
				k = fmt.Sprint([]any(t))
			}
			if b, ok := k.([]byte); ok {
				k = string(b)
			}
			m[k] = c.natural(it.Value)
		}
		return m
	}
	return v
}

// uriOf reads a URI from a str, a URI object or a Proxy object.
func (c converter) uriOf(v any) (gopyro.URI, error) {
	switch x := v.(type) {
	case string:
		return gopyro.Parse(x)
	case Dict:
		cls := x.Class()
		state, _ := x.Get("state")
		items := seqOf(state)
		switch {
		case strings.HasSuffix(cls, ".core.URI") && len(items) == 5:
			return uriFromState(items)
		case strings.HasSuffix(cls, ".Proxy") && len(items) > 0:
			s, ok := items[0].(string)
			if !ok {
				return gopyro.URI{}, fmt.Errorf("a proxy without a URI")
			}
			return gopyro.Parse(s)
		}
	}
	return gopyro.URI{}, fmt.Errorf("not a URI")
}

func uriFromState(st []any) (gopyro.URI, error) {
	proto, _ := st[0].(string)
	obj, _ := st[1].(string)
	sock, _ := st[2].(string)
	host, _ := st[3].(string)
	var port int64
	if p, ok := st[4].(int64); ok {
		port = p
	}
	s := proto + ":" + obj
	switch {
	case sock != "":
		s += "@./u:" + sock
	case host != "":
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		s += "@" + host
		if port != 0 {
			s += fmt.Sprintf(":%d", port)
		}
	}
	return gopyro.Parse(s)
}

// URIObject is the Python URI object (a class dict) for u.
func (p *Protocol) URIObject(u gopyro.URI) Dict {
	var sock, host, port any
	if u.Socket != "" {
		sock = u.Socket
	}
	if u.Host != "" {
		host = u.Host
	}
	if u.Port != 0 {
		port = int64(u.Port)
	}
	obj := u.Object
	if u.Scheme == gopyro.SchemePyroMeta {
		obj = strings.Join(u.Tags, ",")
	}
	return Dict{{"__class__", p.Name + ".core.URI"}, {"state", Tuple{u.Scheme, obj, sock, host, port}}}
}

// ProxyObject is the Python Proxy object (a class dict) for o: what an
// autoproxy result becomes on the Python side.
func (p *Protocol) ProxyObject(o Proxied) Dict {
	set := func(s []string) Set {
		out := make(Set, len(s))
		for i, x := range s {
			out[i] = x
		}
		return out
	}
	if p == Pyro5 {
		return Dict{{"__class__", "Pyro5.client.Proxy"}, {"state", Tuple{o.URI.String(), set(o.Oneway), set(o.Methods), Set{}, "hello", nil}}}
	}
	return Dict{{"__class__", "Pyro4.core.Proxy"}, {"state", Tuple{o.URI.String(), set(o.Oneway), set(o.Methods), Set{}, 0.0, nil, "hello", int64(0), nil}}}
}

// FromGo converts a Go value to a Python value.
func FromGo(p *Protocol, h *Hooks, v reflect.Value) (any, error) {
	c := converter{p: p, hooks: h}
	return c.from(v, 0)
}

func (c converter) from(v reflect.Value, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("a value nested deeper than %d", MaxDepth)
	}
	if !v.IsValid() {
		return nil, nil
	}
	if c.hooks != nil && c.hooks.RefOf != nil {
		// Only pointers and structs are references or served objects.
		if k := v.Kind(); k == reflect.Pointer || k == reflect.Struct {
			if o, ok := c.hooks.RefOf(v); ok {
				return c.p.ProxyObject(o), nil
			}
		}
	}
	switch v.Type() {
	case uriType:
		return c.p.URIObject(v.Interface().(gopyro.URI)), nil
	case bigType:
		if v.IsNil() {
			return nil, nil
		}
		return normInt(v.Interface().(*big.Int)), nil
	case timeType:
		return v.Interface().(time.Time).Format(time.RFC3339Nano), nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, nil
		}
		return c.from(v.Elem(), depth+1)
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := v.Uint()
		if u > math.MaxInt64 {
			return new(big.Int).SetUint64(u), nil
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.String:
		return v.String(), nil
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if v.Kind() == reflect.Slice {
				return slices.Clone(v.Bytes()), nil
			}
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			return b, nil
		}
		if items, ok := v.Interface().([]any); ok {
			// Copied only when an item changes: plain items stay as they are.
			var out []any
			for i, it := range items {
				x, err := c.fromAny(it, depth+1)
				if err != nil {
					return nil, err
				}
				if out == nil && !sameValue(x, it) {
					out = make([]any, len(items))
					copy(out, items[:i])
				}
				if out != nil {
					out[i] = x
				}
			}
			if out == nil {
				return items, nil
			}
			return out, nil
		}
		out := make([]any, v.Len())
		for i := range out {
			x, err := c.from(v.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case reflect.Map:
		d := make(Dict, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, err := c.from(it.Key(), depth+1)
			if err != nil {
				return nil, err
			}
			if l, ok := k.([]any); ok {
				k = Tuple(l)
			}
			x, err := c.from(it.Value(), depth+1)
			if err != nil {
				return nil, err
			}
			d = append(d, Item{k, x})
		}
		slices.SortFunc(d, func(a, b Item) int { return strings.Compare(fmt.Sprint(a.Key), fmt.Sprint(b.Key)) })
		return d, nil
	case reflect.Struct:
		fields := structFields(v.Type())
		d := make(Dict, 0, len(fields))
		for _, f := range fields {
			x, err := c.from(v.FieldByIndex(f.index), depth+1)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.goName, err)
			}
			d = append(d, Item{f.name, x})
		}
		return d, nil
	}
	return nil, fmt.Errorf("%s values cannot be sent to Python", v.Type())
}

// sameValue reports whether a conversion left a plain value unchanged.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case nil, bool, int64, string:
		return a == b
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || (math.IsNaN(x) && math.IsNaN(y)))
	}
	return false
}

// fromAny is from for an item of a []any: plain values need no
// reflection.
func (c converter) fromAny(x any, depth int) (any, error) {
	switch x := x.(type) {
	case nil, bool, int64, float64, string:
		return x, nil
	case int:
		return int64(x), nil
	}
	return c.from(reflect.ValueOf(x), depth)
}

// StructFieldNames returns the wire names of t's fields, in order: what
// positional values fill, in order, when a struct takes keyword arguments.
func StructFieldNames(t reflect.Type) []string {
	fs := structFields(t)
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.name
	}
	return out
}

// IsValueStruct reports whether struct type t travels as one value (a URI,
// a big int, a time) rather than as a dict of its fields.
func IsValueStruct(t reflect.Type) bool {
	return t == uriType || t == timeType || t == bigType.Elem()
}
