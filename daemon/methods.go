package daemon

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"unicode"

	"github.com/gopyro/gopyro/internal/pyro"
)

var (
	ctxType   = reflect.TypeFor[context.Context]()
	errorType = reflect.TypeFor[error]()
)

// method is one remotely callable method of a type.
type method struct {
	name     string        // Go name
	fn       reflect.Value // the method expression: receiver first
	ctx      bool          // takes context.Context first
	in       []reflect.Type
	variadic bool
	out      []reflect.Type // results without the trailing error
	outKinds []streamKind   // per result: served as a stream?
	streams  bool           // some result is a stream
	hasErr   bool
}

// typeInfo is the method table of a type.
type typeInfo struct {
	typ     reflect.Type
	byName  map[string]*method // Go names and aliases
	methods []*method          // sorted by Go name
	refused []string           // "Name: reason"
}

func newTypeInfo(t reflect.Type) *typeInfo {
	ti := &typeInfo{typ: t, byName: map[string]*method{}}
	attrs := t.Implements(pyroAttributesType)
	for i := range t.NumMethod() {
		m := t.Method(i)
		if !m.IsExported() || (attrs && pyroAttributeMethods[m.Name]) {
			continue
		}
		mt, err := newMethod(m)
		if err != nil {
			ti.refused = append(ti.refused, m.Name+": "+err.Error())
			continue
		}
		ti.methods = append(ti.methods, mt)
	}
	// Go names first, so an alias never hides a real name.
	for _, m := range ti.methods {
		ti.byName[m.name] = m
	}
	for _, m := range ti.methods {
		for _, alias := range aliases(m.name) {
			if _, taken := ti.byName[alias]; !taken {
				ti.byName[alias] = m
			}
		}
	}
	return ti
}

func newMethod(m reflect.Method) (*method, error) {
	ft := m.Type // receiver is In(0)
	mt := &method{name: m.Name, fn: m.Func, variadic: ft.IsVariadic()}
	first := 1
	if ft.NumIn() > 1 && ft.In(1) == ctxType {
		mt.ctx = true
		first = 2
	}
	for i := first; i < ft.NumIn(); i++ {
		in := ft.In(i)
		if err := checkWireType(in, map[reflect.Type]bool{}); err != nil {
			return nil, fmt.Errorf("parameter %d (%s): %v", i-first, in, err)
		}
		mt.in = append(mt.in, in)
	}
	n := ft.NumOut()
	if n > 0 && ft.Out(n-1) == errorType {
		mt.hasErr = true
		n--
	}
	for i := range n {
		out := ft.Out(i)
		kind, elem := streamKindOf(out)
		check := out
		if kind != notStream {
			check = elem
			mt.streams = true
		}
		if err := checkWireType(check, map[reflect.Type]bool{}); err != nil {
			return nil, fmt.Errorf("result %d (%s): %v", i, out, err)
		}
		mt.out = append(mt.out, out)
		mt.outKinds = append(mt.outKinds, kind)
	}
	return mt, nil
}

// streamKind says whether a result type is a stream and of which form.
type streamKind uint8

const (
	notStream  streamKind = iota
	seqStream             // iter.Seq[T]: func(yield func(T) bool)
	chanStream            // a channel the daemon receives from
)

// streamKindOf recognises the result types served as streams: iter.Seq[T]
// (any func(func(T) bool)) and channels that can be received from.
func streamKindOf(t reflect.Type) (streamKind, reflect.Type) {
	switch t.Kind() {
	case reflect.Func:
		if t.NumIn() == 1 && t.NumOut() == 0 && !t.IsVariadic() {
			y := t.In(0)
			if y.Kind() == reflect.Func && y.NumIn() == 1 && y.NumOut() == 1 && y.Out(0).Kind() == reflect.Bool && !y.IsVariadic() {
				return seqStream, y.In(0)
			}
		}
	case reflect.Chan:
		if t.ChanDir()&reflect.RecvDir != 0 {
			return chanStream, t.Elem()
		}
	}
	return notStream, nil
}

// checkWireType reports why values of t cannot travel as msgpack.
func checkWireType(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return fmt.Errorf("%s values cannot be sent over the wire", t.Kind())
	case reflect.Interface:
		if t.NumMethod() != 0 && t != errorType {
			return fmt.Errorf("interface %s cannot be decoded (only any and error can)", t)
		}
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return checkWireType(t.Elem(), seen)
	case reflect.Map:
		if err := checkWireType(t.Key(), seen); err != nil {
			return err
		}
		return checkWireType(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("msgpack") == "-" {
				continue
			}
			if err := checkWireType(f.Type, seen); err != nil {
				return fmt.Errorf("field %s: %v", f.Name, err)
			}
		}
	}
	return nil
}

// aliases returns the other names by which Go method name reaches it: the
// first letter lower-cased and the snake_case form.
func aliases(name string) []string {
	var out []string
	r := []rune(name)
	lower := string(unicode.ToLower(r[0])) + string(r[1:])
	if lower != name {
		out = append(out, lower)
	}
	if s := pyro.SnakeCase(name); s != name && s != lower {
		out = append(out, s)
	}
	return out
}

// names returns the Go names of the callable methods, sorted.
func (ti *typeInfo) names() []string {
	out := make([]string, len(ti.methods))
	for i, m := range ti.methods {
		out[i] = m.name
	}
	slices.Sort(out)
	return out
}
