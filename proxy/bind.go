package proxy

import (
	"context"
	"fmt"
	"reflect"

	"github.com/gopyro/gopyro"
)

var (
	ctxType   = reflect.TypeFor[context.Context]()
	errorType = reflect.TypeFor[error]()
)

// Bind fills the func fields of the struct stub points to, so that calling
// a field calls the remote method of the same name:
//
//	var shop struct {
//		Deposit func(ctx context.Context, name string, amount float64) error
//		Balance func(name string) (float64, error)
//	}
//	err := p.Bind(&shop)
//	err = shop.Deposit(ctx, "Meeta", 50)
//
// A field's remote name is its name, or its `pyro:"name"` tag; a field
// tagged `pyro:"-"` is skipped, as are fields that are not funcs. Each func
// may take a context.Context first (otherwise calls use
// context.Background and the proxy's timeout) and must return error last;
// the other results are decoded into their declared types. When the proxy
// knows the remote metadata ([Proxy.Metadata] was called), Bind checks that
// every method exists. An argument or result mismatch is reported when
// the method is called.
func (p *Proxy) Bind(stub any) error {
	v := reflect.ValueOf(stub)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "bind", Message: fmt.Sprintf("stub must be a pointer to a struct, not %T", stub)}
	}
	sv := v.Elem()
	st := sv.Type()
	for i := range st.NumField() {
		f := st.Field(i)
		if !f.IsExported() || f.Type.Kind() != reflect.Func {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("pyro"); ok {
			if tag == "-" {
				continue
			}
			name = tag
		}
		ft := f.Type
		_, isStream := streamElem(ft)
		if !isStream && (ft.NumOut() == 0 || ft.Out(ft.NumOut()-1) != errorType) {
			return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "bind",
				Message: fmt.Sprintf("field %s.%s (%s) must return error as its last result, or be a stream (return only iter.Seq2[T, error])", st, f.Name, ft)}
		}
		if known, ok := p.knownMethod(name); known && !ok {
			return &gopyro.Error{Code: gopyro.CodeNotFound, Op: "bind", URI: p.uri.String(),
				Message: fmt.Sprintf("field %s.%s: the remote object has no method %q", st, f.Name, name)}
		}
		if isStream {
			sv.Field(i).Set(reflect.MakeFunc(ft, p.streamStub(name, ft)))
			continue
		}
		sv.Field(i).Set(reflect.MakeFunc(ft, p.stubFunc(name, ft)))
	}
	return nil
}

// stubArgs splits a stub's arguments into its context and the call's
// arguments.
func stubArgs(ft reflect.Type, in []reflect.Value) (context.Context, []any) {
	ctx := context.Background()
	if ft.NumIn() > 0 && ft.In(0) == ctxType {
		if c, ok := in[0].Interface().(context.Context); ok && c != nil {
			ctx = c
		}
		in = in[1:]
	}
	args := make([]any, 0, len(in))
	for i, a := range in {
		if ft.IsVariadic() && i == len(in)-1 {
			for j := range a.Len() {
				args = append(args, a.Index(j).Interface())
			}
			continue
		}
		args = append(args, a.Interface())
	}
	return ctx, args
}

// streamElem reports whether ft returns just an iter.Seq2[T, error]
// (func(yield func(T, error) bool)), and gives T.
func streamElem(ft reflect.Type) (reflect.Type, bool) {
	if ft.NumOut() != 1 {
		return nil, false
	}
	seq := ft.Out(0)
	if seq.Kind() != reflect.Func || seq.NumIn() != 1 || seq.NumOut() != 0 {
		return nil, false
	}
	y := seq.In(0)
	if y.Kind() != reflect.Func || y.NumIn() != 2 || y.In(1) != errorType || y.NumOut() != 1 || y.Out(0).Kind() != reflect.Bool {
		return nil, false
	}
	return y.In(0), true
}

// streamStub is the function of a stream field: it returns an iterator
// that calls the method when ranged over, as [Stream] does.
func (p *Proxy) streamStub(name string, ft reflect.Type) func([]reflect.Value) []reflect.Value {
	seqType := ft.Out(0)
	elem, _ := streamElem(ft)
	return func(in []reflect.Value) []reflect.Value {
		ctx, args := stubArgs(ft, in)
		seq := reflect.MakeFunc(seqType, func(sin []reflect.Value) []reflect.Value {
			yield := sin[0]
			noErr := reflect.Zero(errorType)
			stream(ctx, p, name, args, func(decode func(reflect.Value) error, err error) bool {
				v := reflect.New(elem).Elem()
				if err == nil {
					err = decode(v)
				}
				if err != nil {
					yield.Call([]reflect.Value{reflect.Zero(elem), reflect.ValueOf(&err).Elem()})
					return false
				}
				return yield.Call([]reflect.Value{v, noErr})[0].Bool()
			})
			return nil
		})
		return []reflect.Value{seq}
	}
}

func (p *Proxy) stubFunc(name string, ft reflect.Type) func([]reflect.Value) []reflect.Value {
	nres := ft.NumOut() - 1
	return func(in []reflect.Value) []reflect.Value {
		ctx, args := stubArgs(ft, in)
		out := make([]reflect.Value, nres+1)
		for i := range nres {
			out[i] = reflect.New(ft.Out(i)).Elem()
		}
		res, err := p.Call(ctx, name, args...)
		if err == nil && nres > 0 {
			err = res.decodeInto(out[:nres])
		}
		errv := reflect.New(errorType).Elem()
		if err != nil {
			for i := range nres {
				out[i] = reflect.New(ft.Out(i)).Elem()
			}
			errv.Set(reflect.ValueOf(err))
		}
		out[nres] = errv
		return out
	}
}
