package wire

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/vmihailenco/msgpack/v5"
)

// The single rpcx route every gopyro call travels on.
const (
	ServicePath   = "gopyro"
	ServiceMethod = "call"
)

// Metadata keys of a request and its reply. Short keys: they are written
// on every call.
const (
	MetaObject      = "o"      // object id
	MetaMethod      = "m"      // method name
	MetaCorrelation = "c"      // correlation id, optional
	MetaTimeout     = "t"      // remaining time in microseconds, optional
	MetaError       = "e"      // set to "1" in a reply whose payload is an error
	MetaOneway      = "w"      // set to "1" in a request that wants no reply
	MetaAuth        = "__AUTH" // rpcx's own key for a token; rpcx's server leaves it to gopyro
)

// SeqBase keeps gopyro's SendRaw sequence numbers clear of the ones rpcx's
// own Call and Go methods use (they count from 0).
const SeqBase = 1 << 62

// FormatTimeout writes d for [MetaTimeout].
func FormatTimeout(d time.Duration) string {
	us := d.Microseconds()
	if us < 1 {
		us = 1
	}
	return strconv.FormatInt(us, 10)
}

// ParseTimeout reads [MetaTimeout]; ok is false when s is empty or invalid.
func ParseTimeout(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil || us <= 0 {
		return 0, false
	}
	return time.Duration(us) * time.Microsecond, true
}

// remoteError is the wire form of an error: [code, type, message, stack].
type remoteError struct {
	//lint:ignore U1000 msgpack reads its tag: encode the struct as an array
	_msgpack struct{} `msgpack:",as_array"`
	Code     uint8
	Type     string
	Message  string
	Stack    string
}

// EncodeError encodes err for a reply flagged with [MetaError]. An
// *gopyro.Error keeps its code and type; any other error is sent with
// CodeRemote (CodeTimeout when it is a context deadline) and its Go type
// name.
func EncodeError(err error) []byte {
	re := remoteError{Code: uint8(gopyro.CodeRemote), Type: fmt.Sprintf("%T", err), Message: err.Error()}
	if errors.Is(err, context.DeadlineExceeded) {
		// The deadline the caller sent ran out on this side first.
		re.Code = uint8(gopyro.CodeTimeout)
	}
	if ge, ok := errors.AsType[*gopyro.Error](err); ok {
		re.Code = uint8(ge.Code)
		re.Type = ge.RemoteType
		re.Message = ge.Message
		if re.Message == "" && ge.Err != nil {
			re.Message = ge.Err.Error()
		}
		if outer := err.Error(); error(ge) != err && strings.Contains(outer, ge.Error()) {
			// Wrapped with %w around a gopyro error (a sentinel made by
			// gopyro.NewError): the wrapper's own words travel too, while
			// code and type still let errors.Is match the sentinel.
			re.Message = strings.Replace(outer, ge.Error(), re.Message, 1)
		}
		re.Stack = ge.Stack
	}
	b, e := msgpack.Marshal(&re)
	if e != nil { // cannot happen for strings and a uint8
		b, _ = msgpack.Marshal(&remoteError{Code: uint8(gopyro.CodeUnknown), Message: "unencodable error"})
	}
	return b
}

// DecodeError reads an error payload written by [EncodeError] into an
// *gopyro.Error with Remote set.
func DecodeError(b []byte) *gopyro.Error {
	var re remoteError
	if err := Validate(b); err != nil {
		return &gopyro.Error{Code: gopyro.CodeProtocol, Message: "malformed error reply", Err: err}
	}
	if err := msgpack.Unmarshal(b, &re); err != nil {
		return &gopyro.Error{Code: gopyro.CodeProtocol, Message: "malformed error reply", Err: err}
	}
	return &gopyro.Error{Code: gopyro.Code(re.Code), Remote: true, RemoteType: re.Type, Message: re.Message, Stack: re.Stack}
}
