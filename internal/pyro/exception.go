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
	args := Tuple{msg}
	if cls == "builtins.StopIteration" {
		args = Tuple{}
	}
	return Dict{{"__class__", cls}, {"__exception__", true}, {"args", args}, {"attributes", attrs}}
}

// Error turns a Python exception object (the payload of a RESULT with
// FlagException) into a *gopyro.Error: Remote, with the Python class as
// RemoteType, str(exception) as Message and the remote traceback as
// Stack. The code is the one a gopyro daemon sent (gopyro_code), or the
// nearest for Pyro's own errors, CodeRemote otherwise.
func (p *Protocol) Error(v any) *gopyro.Error {
	d, _ := v.(Dict)
	cls := d.Class()
	if cls == "" {
		return &gopyro.Error{Code: gopyro.CodeProtocol, Remote: true, Message: "an exception result that is not an exception: " + Describe(v)}
	}
	ge := &gopyro.Error{Code: gopyro.CodeRemote, Remote: true, RemoteType: cls}
	args, _ := d.Get("args")
	items := seqOf(args)
	switch len(items) {
	case 0:
	case 1:
		ge.Message = pyStr(items[0])
	default:
		parts := make([]string, len(items))
		for i, x := range items {
			parts[i] = pyRepr(x)
		}
		ge.Message = "(" + strings.Join(parts, ", ") + ")"
	}
	attrs, _ := d.Get("attributes")
	ad, _ := attrs.(Dict)
	if tb, ok := ad.Get("_pyroTraceback"); ok {
		var b strings.Builder
		for _, line := range seqOf(tb) {
			s, _ := line.(string)
			b.WriteString(s)
		}
		ge.Stack = strings.TrimRight(b.String(), "\n")
	}
	short := cls[strings.LastIndexByte(cls, '.')+1:]
	_, pyroErr := cutPyroErrors(cls)
	switch {
	case ad.Str("gopyro_code") != "":
		ge.Code = codeNamed(ad.Str("gopyro_code"))
	case short == "NamingError" && pyroErr:
		ge.Code = gopyro.CodeNotFound
	case short == "DaemonError" && pyroErr && ge.Message == "unknown object":
		ge.Code = gopyro.CodeNotFound
	case short == "SecurityError" && pyroErr:
		ge.Code = gopyro.CodeSecurity
	case (short == "SerializeError" || short == "ProtocolError" || short == "MessageTooLargeError") && pyroErr:
		ge.Code = gopyro.CodeProtocol
	case short == "TimeoutError":
		ge.Code = gopyro.CodeTimeout
	case cls == "builtins.TypeError":
		ge.Code = gopyro.CodeArgument
	case cls == "builtins.AttributeError": // no such method
		ge.Code = gopyro.CodeNotFound
	}
	return ge
}

// codeNamed is the code whose String is name; CodeRemote if none is.
func codeNamed(name string) gopyro.Code {
	for c := gopyro.CodeUnknown; c < 64; c++ {
		if s := c.String(); s == name {
			return c
		}
		if strings.HasPrefix(c.String(), "code(") {
			break
		}
	}
	return gopyro.CodeRemote
}

// pyStr is Python's str() of a simple value.
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v)
}

// pyRepr approximates Python's repr() of a value, for messages.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + strings.ReplaceAll(x, "'", `\'`) + "'"
	case []any, Tuple, Set:
		items := seqOf(x)
		parts := make([]string, len(items))
		for i, e := range items {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}
