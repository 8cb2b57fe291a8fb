package daemon

import (
	"context"
	"net"
)

// CallInfo describes the call a method is serving. Methods that take a
// context.Context first get it through [CallInfoFrom].
type CallInfo struct {
	// ObjectID and Method are the object id and the method name as the
	// caller wrote it (possibly an alias).
	ObjectID string
	Method   string
	// CorrelationID is the caller's correlation id, empty when none was sent.
	CorrelationID string
	// RemoteAddr is the caller's address.
	RemoteAddr net.Addr
	// ConnID identifies the caller's connection within this daemon.
	ConnID uint64
	// Oneway reports that the caller does not wait for a reply.
	Oneway bool

	seq uint64 // the request's sequence number on its connection
	// lazy: streams are opened without reading a first chunk (a Pyro
	// client fetches items one by one).
	lazy bool
}

type callInfoKey struct{}

// CallInfoFrom returns the CallInfo of the call ctx belongs to.
func CallInfoFrom(ctx context.Context) (CallInfo, bool) {
	ci, ok := ctx.Value(callInfoKey{}).(*CallInfo)
	if !ok {
		return CallInfo{}, false
	}
	return *ci, true
}
