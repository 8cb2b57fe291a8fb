// Package wire is gopyro's wire format on top of rpcx.
//
// Every call travels on one rpcx route (ServicePath "gopyro", ServiceMethod
// "call") as a SerializeNone frame. The object id, method, correlation id,
// timeout and flags travel in the frame's metadata (see the Meta* keys); the
// payload is a msgpack array of the positional arguments. A reply payload is
// a msgpack array of the method's non-error results; a remote error is a
// msgpack array [code, type, message, stack] flagged by MetaError.
//
// Untrusted bytes are checked before they are decoded: [GuardConn] enforces
// a maximum frame size and refuses compressed frames while the bytes are
// read off the socket, and [Validate] walks a payload once, without
// allocating, rejecting lengths that the payload cannot back, excessive
// nesting and trailing bytes. Only then does a [Decoder] decode, converting
// numbers to the declared Go types with range checks.
package wire
