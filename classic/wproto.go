package classic

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// The server and a worker talk over a Unix socket pair the server makes
// (the worker's fd 3): one request at a time, each a 4-byte big-endian
// length and a msgpack body, answered by one reply. go-plugin starts the
// worker, checks its handshake and kills it; the calls themselves take
// this socket, which costs far less per call than go-plugin's net/rpc
// over yamux (see the package documentation).

// maxFrame bounds a frame between server and worker: code, arguments or
// a value larger than this is refused with a clear error.
const maxFrame = 64 << 20

// Request operations.
const (
	opExec = "exec" // run statements and declarations
	opEval = "eval" // evaluate one expression, return its value
	opCall = "call" // call a function by name with arguments
)

type wRequest struct {
	Op      string `msgpack:"o"`
	Src     string `msgpack:"s"`
	Args    []byte `msgpack:"a,omitempty"` // opCall: a msgpack array
	Timeout int64  `msgpack:"t,omitempty"` // nanoseconds; 0: none
}

type wReply struct {
	Value []byte   `msgpack:"v,omitempty"` // msgpack of the value (eval, call)
	Err   *failure `msgpack:"e,omitempty"`
	// Lost says the interpreter could not be stopped after a deadline:
	// the server must kill the worker.
	Lost string `msgpack:"l,omitempty"`
}

// failure is an error raised in the worker, sent to the server.
type failure struct {
	Kind  string `msgpack:"k"` // one of the kind* constants
	Msg   string `msgpack:"m"`
	Stack string `msgpack:"s,omitempty"`
}

// Failure kinds.
const (
	kindCompile     = "compile"     // the code does not parse or type-check
	kindPanic       = "panic"       // the code panicked
	kindUnsupported = "unsupported" // a construct the interpreter lacks
	kindValue       = "value"       // a value that cannot be sent
	kindTimeout     = "timeout"     // the deadline passed (the session lives)
	kindArgument    = "argument"    // bad arguments for a call by name
	kindNotFound    = "notfound"    // no such name for a call by name
	kindProtocol    = "protocol"    // a malformed request
)

// frameConn reads and writes frames.
type frameConn struct {
	r   *bufio.Reader
	w   *bufio.Writer
	hdr [4]byte
}

func newFrameConn(rw io.ReadWriter) *frameConn {
	return &frameConn{r: bufio.NewReaderSize(rw, 64<<10), w: bufio.NewWriterSize(rw, 64<<10)}
}

func (c *frameConn) write(v any) error {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxFrame {
		return fmt.Errorf("message of %d bytes is over the %d-byte limit", len(b), maxFrame)
	}
	binary.BigEndian.PutUint32(c.hdr[:], uint32(len(b)))
	if _, err := c.w.Write(c.hdr[:]); err != nil {
		return err
	}
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	return c.w.Flush()
}

func (c *frameConn) read(v any) error {
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(c.hdr[:])
	if n > maxFrame {
		return fmt.Errorf("message of %d bytes is over the %d-byte limit", n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return err
	}
	return msgpack.Unmarshal(b, v)
}
