package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/smallnest/rpcx/protocol"
)

// rpcx frame layout: 12-byte header (magic 0x08, version, flags,
// serialize type, 8-byte seq), then a uint32 big-endian body length, then
// the body.
const (
	headerLen      = 12 // magic, version, flags, serialize type, seq
	seqOffset      = 4
	frameHeaderLen = 16 // the header and the body length
	rpcxMagic      = 0x08
	flagsOffset    = 2    // message type, heartbeat, oneway, compression, status
	compressMask   = 0x1C // compression bits of the flags
	onewayMask     = 0x20 // oneway bit of the flags
)

// ErrFrameTooLarge is returned by a [GuardConn] read when the peer announces
// a frame larger than the limit. The connection is unusable afterwards.
var ErrFrameTooLarge = errors.New("wire: frame exceeds the maximum message size")

// GuardConn wraps a connection carrying rpcx frames and checks every frame
// header as it is read: the magic byte, no compression (gopyro never
// compresses, and a gzip frame could expand without bound) and the
// announced body length against a limit. rpcx allocates the announced length
// before reading it, so this check is what keeps a lying length header from
// costing memory. A violation fails the Read, which makes rpcx drop the
// connection.
//
// Reads must come from a single goroutine (as rpcx does); Write and Close
// may be called concurrently.
type GuardConn struct {
	net.Conn
	max int64

	// Read state; only touched by the reading goroutine.
	hdr        [frameHeaderLen]byte
	hdrN       int       // bytes of the current header seen so far
	bodyRem    int64     // body bytes still to pass through
	err        error     // sticky read error
	frames     uint64    // frames read whole
	frameStart time.Time // when the current frame began to arrive
	created    time.Time

	// Timeouts, when set (before first use), bound reads; see ReadTimeouts.
	Timeouts *ReadTimeouts
	// WriteTimeout, when positive (set before first use), bounds every
	// Write and WriteReply: a peer that does not take a frame within it is
	// dropped (the connection is closed), so that replies to a client that
	// stopped reading neither pile up nor hold their goroutines.
	WriteTimeout time.Duration

	// ReplyOversize makes the guard answer an oversized request itself:
	// it writes an rpcx error reply for the frame's seq and discards up to
	// DrainLimit bytes of its body (so the peer's write completes and it
	// reads the reply) before failing the read. Set it before first use;
	// daemons do, clients do not.
	ReplyOversize bool

	closeOnce sync.Once
	onClose   func()

	wmu sync.Mutex // serialises writes: frames from rpcx and WriteReply

	dmu         sync.Mutex // guards the write deadline against a late cancellation
	writing     uint64     // numbers writes bounded by a context; guarded by dmu
	deadlineSet bool       // a write deadline is set on Conn; guarded by dmu
}

// ReadTimeouts bound a daemon's reads, so that no peer holds a connection
// without sending what it should. Zero turns a bound off.
type ReadTimeouts struct {
	// Handshake bounds the TLS handshake and the whole first frame, from
	// the moment the connection was wrapped.
	Handshake time.Duration
	// Frame bounds each later frame, from its first byte to its last.
	Frame time.Duration
	// Idle closes a connection when no frame arrives for this long and
	// Busy (if set) reports no call in flight.
	Idle time.Duration
	// Busy reports that the connection has calls in flight: it is then
	// waiting for its replies, not idle.
	Busy func() bool
}

// armRead sets the read deadline for the next read.
func (g *GuardConn) armRead(mid bool) {
	t := g.Timeouts
	var dl time.Time
	switch {
	case g.frames == 0 && t.Handshake > 0:
		dl = g.created.Add(t.Handshake)
	case mid && t.Frame > 0:
		dl = g.frameStart.Add(t.Frame)
	case !mid && t.Idle > 0:
		dl = time.Now().Add(t.Idle)
	}
	_ = g.Conn.SetReadDeadline(dl)
}

// Write writes p whole before any other frame is written.
func (g *GuardConn) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.armWrite()
	n, err := g.Conn.Write(p)
	g.wrote(err)
	return n, err
}

// armWrite sets the write deadline of the next write; called with wmu.
func (g *GuardConn) armWrite() {
	if g.WriteTimeout > 0 {
		_ = g.Conn.SetWriteDeadline(time.Now().Add(g.WriteTimeout))
	}
}

// wrote drops the connection after a write that timed out: a partial
// frame may be on it, and its peer is not reading.
func (g *GuardConn) wrote(err error) {
	if err != nil && g.WriteTimeout > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		_ = g.Conn.Close()
	}
}

// WriteReply writes the reply to req with the payload pieces as its body,
// without first copying them into a frame buffer the way rpcx does: the
// header goes out, then the pieces themselves (one writev on TCP). For
// large replies.
func (g *GuardConn) WriteReply(req *protocol.Message, payload ...[]byte) error {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	bufs := make(net.Buffers, 0, 1+len(payload))
	bufs = append(bufs, replyHead(req, n))
	bufs = append(bufs, payload...)
	return g.writeBuffers(bufs)
}

// writeBuffers writes bufs as one frame: no other write comes between.
func (g *GuardConn) writeBuffers(bufs net.Buffers) error {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.armWrite()
	_, err := bufs.WriteTo(g.Conn)
	g.wrote(err)
	return err
}

// writeBuffersCtx is writeBuffers bounded by ctx: its deadline, or its
// cancellation, ends a write the peer does not take. A write cut short
// leaves a partial frame behind: the caller must then drop the connection.
func (g *GuardConn) writeBuffersCtx(ctx context.Context, bufs net.Buffers) error {
	if ctx.Done() == nil {
		return g.writeBuffers(bufs)
	}
	g.wmu.Lock()
	defer g.wmu.Unlock()
	dl, hasDeadline := ctx.Deadline()
	g.dmu.Lock()
	g.writing++
	token := g.writing
	if hasDeadline || g.deadlineSet {
		_ = g.Conn.SetWriteDeadline(dl) // the zero time clears an old one
		g.deadlineSet = hasDeadline
	}
	g.dmu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		g.dmu.Lock()
		defer g.dmu.Unlock()
		if g.writing == token { // still this write: stop it
			_ = g.Conn.SetWriteDeadline(longAgo)
			g.deadlineSet = true
		}
	})
	_, err := bufs.WriteTo(g.Conn)
	stop()
	g.dmu.Lock()
	g.writing++ // a late AfterFunc of this write is now a no-op
	g.dmu.Unlock()
	return err
}

// longAgo is a deadline that has passed: setting it stops a blocked write.
var longAgo = time.Unix(1, 0)

// replyHead encodes the reply to req up to its payload, as rpcx's
// Context.Write would: the request's header turned into a response, its
// service path and method, no metadata, and the payload's length.
func replyHead(req *protocol.Message, payloadLen int) []byte {
	h := *req.Header
	h.SetMessageType(protocol.Response)
	h.SetCompressType(protocol.None)
	return frameHead(h, req.ServicePath, req.ServiceMethod, nil, payloadLen)
}

// frameHead encodes an rpcx frame up to its payload: header, body length,
// service path, service method, metadata, payload length.
func frameHead(h protocol.Header, sp, sm string, meta map[string]string, payloadLen int) []byte {
	metaLen := 0
	for k, v := range meta {
		metaLen += 8 + len(k) + len(v)
	}
	total := (4 + len(sp)) + (4 + len(sm)) + (4 + metaLen) + (4 + payloadLen)
	head := make([]byte, frameHeaderLen+total-payloadLen)
	copy(head, h[:])
	binary.BigEndian.PutUint32(head[headerLen:frameHeaderLen], uint32(total))
	n := frameHeaderLen
	put := func(s string) {
		binary.BigEndian.PutUint32(head[n:], uint32(len(s)))
		n += 4 + copy(head[n+4:], s)
	}
	put(sp)
	put(sm)
	binary.BigEndian.PutUint32(head[n:], uint32(metaLen))
	n += 4
	for k, v := range meta {
		put(k)
		put(v)
	}
	binary.BigEndian.PutUint32(head[n:], uint32(payloadLen))
	return head
}

// DrainLimit bounds how much of an oversized request body a guard reads
// and discards so that its sender gets the error reply.
const DrainLimit = 256 << 20

// NewGuardConn wraps c; max is the largest body accepted in bytes (at least
// 64). onClose, if not nil, runs once when the connection is closed.
func NewGuardConn(c net.Conn, max int64, onClose func()) *GuardConn {
	return &GuardConn{Conn: c, max: max, onClose: onClose, created: time.Now()}
}

// Read implements net.Conn, checking frame headers in the data it returns.
func (g *GuardConn) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	for {
		mid := g.hdrN > 0 || g.bodyRem > 0
		if g.Timeouts != nil {
			g.armRead(mid)
		}
		n, err := g.Conn.Read(p)
		if n > 0 {
			frames := g.frames
			if cerr := g.scan(p[:n]); cerr != nil {
				g.err = cerr
				return 0, cerr
			}
			if (g.hdrN > 0 || g.bodyRem > 0) && (!mid || g.frames != frames) {
				g.frameStart = time.Now() // a new frame began in this read
			}
			return n, err
		}
		if err != nil && g.Timeouts != nil && !mid && g.frames > 0 && errors.Is(err, os.ErrDeadlineExceeded) &&
			g.Timeouts.Busy != nil && g.Timeouts.Busy() {
			continue // quiet, but waiting for its calls' replies: not idle
		}
		return n, err
	}
}

// scan advances the frame parser over b.
func (g *GuardConn) scan(b []byte) error {
	for len(b) > 0 {
		if g.bodyRem > 0 {
			k := min(int64(len(b)), g.bodyRem)
			g.bodyRem -= k
			b = b[k:]
			if g.bodyRem == 0 {
				g.frames++
			}
			continue
		}
		k := copy(g.hdr[g.hdrN:], b)
		g.hdrN += k
		b = b[k:]
		if g.hdrN < frameHeaderLen {
			if g.hdr[0] != rpcxMagic {
				return fmt.Errorf("wire: bad magic byte 0x%02x: not a gopyro peer", g.hdr[0])
			}
			continue
		}
		if g.hdr[0] != rpcxMagic {
			return fmt.Errorf("wire: bad magic byte 0x%02x: not a gopyro peer", g.hdr[0])
		}
		if g.hdr[flagsOffset]&compressMask != 0 {
			return errors.New("wire: compressed frames are not accepted")
		}
		n := int64(binary.BigEndian.Uint32(g.hdr[headerLen:frameHeaderLen]))
		if n > g.max {
			err := fmt.Errorf("%w: %d > %d bytes", ErrFrameTooLarge, n, g.max)
			if g.ReplyOversize {
				g.rejectFrame(n-int64(len(b)), err)
			}
			return err
		}
		g.bodyRem = n
		g.hdrN = 0
		if n == 0 {
			g.frames++
		}
	}
	return nil
}

// rejectFrame answers the frame whose header is in g.hdr with an error and
// discards the rest of its body (rem bytes, if not above DrainLimit).
func (g *GuardConn) rejectFrame(rem int64, cause error) {
	oneway := g.hdr[flagsOffset]&onewayMask != 0
	if !oneway {
		res := protocol.NewMessage()
		res.SetMessageType(protocol.Response)
		res.SetSerializeType(protocol.SerializeNone)
		res.SetMessageStatusType(protocol.Error)
		res.SetSeq(binary.BigEndian.Uint64(g.hdr[seqOffset:headerLen]))
		res.ServicePath, res.ServiceMethod = ServicePath, ServiceMethod
		res.Metadata = map[string]string{protocol.ServiceError: OversizePrefix + cause.Error()}
		_, _ = g.Write(res.Encode())
	}
	if rem <= 0 || rem > DrainLimit {
		return
	}
	_, _ = io.CopyN(io.Discard, g.Conn, rem)
}

// OversizePrefix starts the rpcx error text of a request refused for its
// size; the proxy turns such a reply into a gopyro.CodeProtocol error.
const OversizePrefix = "gopyro: request refused: "

// BusyPrefix starts the text of a connection refusal (sequence number 0):
// the daemon is at its connection limit. The proxy turns it into a
// gopyro.CodeBusy error.
const BusyPrefix = "gopyro: busy: "

// RefusalFrame is the frame a daemon writes on a connection it refuses
// before closing it: an error reply with sequence number 0, which names no
// request, carrying msg.
func RefusalFrame(msg string) []byte {
	res := protocol.NewMessage()
	res.SetMessageType(protocol.Response)
	res.SetSerializeType(protocol.SerializeNone)
	res.SetMessageStatusType(protocol.Error)
	res.ServicePath, res.ServiceMethod = ServicePath, ServiceMethod
	res.Metadata = map[string]string{protocol.ServiceError: msg}
	return res.Encode()
}

// Close closes the connection and runs the close hook once.
func (g *GuardConn) Close() error {
	err := g.Conn.Close()
	g.closeOnce.Do(func() {
		if g.onClose != nil {
			g.onClose()
		}
	})
	return err
}
