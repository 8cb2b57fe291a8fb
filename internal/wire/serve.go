package wire

import (
	"time"
)

// Request is one call as a transport delivers it to a [Handler]. It is
// gopyro's own view of a request: no field belongs to a particular
// transport, so that rpcx frames today and Pyro frames later reach the
// daemon the same way.
type Request struct {
	// Object and Method name the call ([MetaObject], [MetaMethod]).
	Object, Method string
	// Token is the shared secret the caller presented ([MetaAuth]).
	Token string
	// Correlation is the caller's correlation id, "" when none was sent.
	Correlation string
	// Timeout is the time the caller has left; 0 when it sent none.
	Timeout time.Duration
	// Batch is [BatchAll] or [BatchStopOnFail] for a batch, "" otherwise.
	Batch string
	// Oneway reports that the caller wants no reply; w is then not used.
	Oneway bool
	// Seq is the request's sequence number on its connection: a later
	// Cancel call on the built-in object names the request by it.
	Seq uint64
	// Payload is the encoded arguments (a msgpack array), or the batch.
	// It belongs to the handler: the transport never reuses it, so a
	// handler may keep slices of it (large []byte arguments do).
	Payload []byte
	// Conn is the value given to the transport with the connection the
	// request came on (the daemon's per-connection state).
	Conn any
}

// ParseRequest fills a Request from a frame's metadata and payload.
func ParseRequest(meta map[string]string, payload []byte, oneway bool) Request {
	r := Request{
		Object:      meta[MetaObject],
		Method:      meta[MetaMethod],
		Token:       meta[MetaAuth],
		Correlation: meta[MetaCorrelation],
		Batch:       meta[MetaBatch],
		Oneway:      oneway || meta[MetaOneway] == "1",
		Payload:     payload,
	}
	r.Timeout, _ = ParseTimeout(meta[MetaTimeout])
	return r
}

// ReplyWriter answers one request. Exactly one of its methods is called,
// once, for a request that is not oneway.
type ReplyWriter interface {
	// Reply sends the results: the pieces, back to back, are the payload
	// (a msgpack array). The pieces are not retained after Reply returns.
	Reply(payload ...[]byte) error
	// Fail sends an error payload written by [EncodeError].
	Fail(errPayload []byte) error
}

// Handler serves the requests a transport reads. ServeRequest may be
// called concurrently, for requests of one connection too; the transport
// runs each request on a goroutine of its own. req and w are valid until
// ServeRequest returns (req.Payload, which the handler owns, longer).
type Handler interface {
	ServeRequest(req *Request, w ReplyWriter)
}
