package pyro

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gopyro/gopyro"
)

// ExceptionClass is the Python exception class a Go error becomes: the
// type an error names when it names a Python one ("builtins.KeyError",
// "Pyro4.errors.NamingError"), otherwise the nearest builtin for its code,
// so that a Python `except ValueError` works.
func (p *Protocol) ExceptionClass(err error) string {
	ge, ok := errors.AsType[*gopyro.Error](err)
	if !ok {
		return "builtins.RuntimeError"
	}
	if t := ge.RemoteType; strings.HasPrefix(t, "builtins.") {
		return t
	} else if rest, ok := cutPyroErrors(t); ok {
		return p.Name + ".errors." + rest
	}
	switch ge.Code {
	case gopyro.CodeArgument, gopyro.CodeInvalid, gopyro.CodeExists:
		return "builtins.ValueError"
	case gopyro.CodeNotFound:
		return "builtins.LookupError"
	case gopyro.CodeTimeout, gopyro.CodeCanceled:
		return "builtins.TimeoutError"
	case gopyro.CodeSecurity:
		return "builtins.PermissionError"
	case gopyro.CodeUnsupported:
		return "builtins.NotImplementedError"
	case gopyro.CodeProtocol:
		return p.Name + ".errors.ProtocolError"
	case gopyro.CodeCommunication:
		return p.Name + ".errors.CommunicationError"
	}
	return "builtins.RuntimeError"
}

func cutPyroErrors(t string) (string, bool) {
	for _, pre := range []string{"Pyro4.errors.", "Pyro5.errors."} {
		if rest, ok := strings.CutPrefix(t, pre); ok {
			return rest, true
		}
	}
	return "", false
}

// ExceptionObject is the serialized Python exception for err: its class,
// its message as the only argument, a traceback naming the Go side, and
// the gopyro code and remote type as attributes (gopyro_code,
// gopyro_type), so that nothing of the Go error is lost.
func (p *Protocol) ExceptionObject(err error) Dict {
	cls := p.ExceptionClass(err)
	msg := err.Error()
	code, typ, stack := gopyro.CodeRemote.String(), fmt.Sprintf("%T", err), ""
	if ge, ok := errors.AsType[*gopyro.Error](err); ok {
		code, typ, stack = ge.Code.String(), ge.RemoteType, ge.Stack
		if ge.Message != "" {
			msg = ge.Message
			if ge.Err != nil {
				msg += ": " + ge.Err.Error()
			}
		}
	}
	short := cls[strings.LastIndexByte(cls, '.')+1:]
	if strings.HasPrefix(cls, p.Name+".errors.") {
		short = cls
	}
	tb := []any{"Traceback (most recent call last):\n", "  (gopyro: the call ran in Go)\n"}
	if stack != "" {
		tb = append(tb, stack+"\n")
	}
	tb = append(tb, short+": "+msg+"\n")
	attrs := Dict{{"_pyroTraceback", tb}}
	if code != "" {
		attrs = append(attrs, Item{"gopyro_code", code})
	}
	if typ != "" {
		attrs = append(attrs, Item{"gopyro_type", typ})
	}
	return Dict{{"__class__", cls}, {"__exception__", true}, {"args", Tuple{msg}}, {"attributes", attrs}}
}
