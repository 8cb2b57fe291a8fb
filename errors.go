package gopyro

import (
	"errors"
	"strconv"
	"strings"
)

// Code classifies an [Error]. Codes travel on the wire, so errors.Is by code
// works on an error that came from a peer.
type Code uint8

// Error codes. New codes are only ever appended.
const (
	// CodeUnknown is an unclassified failure.
	CodeUnknown Code = iota
	// CodeInvalid is bad local input: an unparsable URI, a bad name, a bad option.
	CodeInvalid
	// CodeNotFound: the object, method or name does not exist.
	CodeNotFound
	// CodeArgument: wrong number or types of arguments, or a number out of
	// range for the declared parameter type.
	CodeArgument
	// CodeCommunication: the connection could not be made or was lost.
	CodeCommunication
	// CodeTimeout: the deadline passed before the reply arrived.
	CodeTimeout
	// CodeProtocol: a malformed or oversized message.
	CodeProtocol
	// CodeSecurity: a bad or missing token, or a TLS failure.
	CodeSecurity
	// CodeRemote: the remote method returned an error or panicked.
	CodeRemote
	// CodeBusy: the peer is at a configured limit (in-flight calls, streams).
	CodeBusy
	// CodeClosed: the proxy or daemon was closed.
	CodeClosed
	// CodeExists: a registration exists and overwriting was not allowed.
	CodeExists
	// CodeUnsupported: the operation is not supported by this peer or backend.
	CodeUnsupported
	// CodeCanceled: the caller cancelled the call's context. Such an
	// error also matches context.Canceled with errors.Is.
	CodeCanceled
)

var codeNames = [...]string{
	CodeUnknown:       "unknown",
	CodeInvalid:       "invalid",
	CodeNotFound:      "not found",
	CodeArgument:      "bad argument",
	CodeCommunication: "communication",
	CodeTimeout:       "timeout",
	CodeProtocol:      "protocol",
	CodeSecurity:      "security",
	CodeRemote:        "remote error",
	CodeBusy:          "busy",
	CodeClosed:        "closed",
	CodeExists:        "exists",
	CodeUnsupported:   "unsupported",
	CodeCanceled:      "canceled",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// Sentinels for errors.Is. Each matches any [*Error] with the same code:
//
//	if errors.Is(err, gopyro.ErrNotFound) { ... }
//
// They are constants, so no caller can change what they match.
const (
	ErrInvalid       = codeError(CodeInvalid)
	ErrNotFound      = codeError(CodeNotFound)
	ErrArgument      = codeError(CodeArgument)
	ErrCommunication = codeError(CodeCommunication)
	ErrTimeout       = codeError(CodeTimeout)
	ErrProtocol      = codeError(CodeProtocol)
	ErrSecurity      = codeError(CodeSecurity)
	ErrRemote        = codeError(CodeRemote)
	ErrBusy          = codeError(CodeBusy)
	ErrClosed        = codeError(CodeClosed)
	ErrExists        = codeError(CodeExists)
	ErrUnsupported   = codeError(CodeUnsupported)
	ErrCanceled      = codeError(CodeCanceled)
)

// codeError is the type of the sentinels: an error that is only a Code.
type codeError Code

func (c codeError) Error() string { return "gopyro: " + Code(c).String() }

// Error is the error type of every gopyro package.
//
// An Error raised by a remote method keeps the remote type name (for example
// "*errors.errorString", or the RemoteType of an *Error the method returned)
// and the message. Remote is true when the error came from the peer.
type Error struct {
	Code Code
	// Op is the operation that failed, such as "call Deposit" or "dial".
	Op string
	// URI is the object or name involved, when there is one.
	URI string
	// Remote reports that the peer raised this error.
	Remote bool
	// RemoteType is the Go type (or a chosen type name) of the remote error.
	RemoteType string
	// Message is the human-readable description.
	Message string
	// Stack is the remote stack trace; only sent when the daemon enables it.
	Stack string
	// Err is the local cause, if any.
	Err error
}

// Error formats e as "op uri: code: type: message: cause", leaving out
// empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	add := func(sep, s string) {
		if s == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(s)
	}
	add("", e.Op)
	add(" ", e.URI)
	add(": ", e.Code.String())
	if e.Remote {
		add(": ", strings.TrimSpace("remote "+e.RemoteType)) // no "remote :" for an error without a type
	} else {
		add(": ", e.RemoteType)
	}
	add(": ", e.Message)
	if e.Err != nil {
		add(": ", e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the local cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a sentinel of e's Code (errors.Is(err,
// gopyro.ErrNotFound) holds for every not-found error), or an *Error with
// the same Code and, when the target sets RemoteType, the same RemoteType:
// so a package can declare a sentinel with its own RemoteType (with
// [NewError]) that still matches after the error crossed the wire.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case codeError:
		return Code(t) == e.Code
	case *Error:
		return t.Code == e.Code && (t.RemoteType == "" || t.RemoteType == e.RemoteType)
	}
	return false
}

// CodeOf returns the Code of the first *Error in err's chain, CodeUnknown if
// there is none.
func CodeOf(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeUnknown
}

// NewError returns an error with code and a message. A remote method may
// return one to choose the code and the type name its caller sees.
func NewError(code Code, remoteType, message string) *Error {
	return &Error{Code: code, RemoteType: remoteType, Message: message}
}
