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
	headerLen       = 12 // magic, version, flags, serialize type, seq
	seqOffset       = 4
	frameHeaderLen  = 16 // the header and the body length
	rpcxMagic       = 0x08
	flagsOffset     = 2    // message type, heartbeat, oneway, compression, status
	serializeOffset = 3    // serialize type in the high nibble
	responseMask    = 0x80 // message type bit of the flags: a response
	heartbeatMask   = 0x40 // heartbeat bit of the flags
	onewayMask      = 0x20 // oneway bit of the flags
	compressMask    = 0x1C // compression bits of the flags
	statusMask      = 0x03 // message status bits of the flags
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
	hdrN       int // bytes of the current header seen so far
	pre        [prefixLen]byte
	preN       int       // bytes of the current body's prefix seen so far (Strict)
	bodyLen    int64     // the current body's announced length
	bodyRem    int64     // body bytes still to pass through
	stash      []byte    // bytes read but not yet handed over (see scan)
	stashErr   error     // the read error that came with the stash
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

	// Strict, set before first use (daemons do), accepts only gopyro's
	// requests: no replies, heartbeats or error statuses, gopyro's
	// serialize type and route, metadata of at most MaxMetaLen bytes. A
	// frame that breaks a rule is answered with an error (unless oneway)
	// and the connection is dropped, before rpcx decodes anything of it.
	Strict bool
	// Budget, when set before first use, is charged each request's body
	// before the body is read, and given back by Done (or when the
	// connection fails before the request was handed over): reading waits
	// while the budget is spent.
	Budget *Budget
	// MaxPending, when positive (set before first use), bounds the
	// requests read from this connection and not yet Done: reading waits
	// while that many are in hand, so one connection cannot take every
	// slot of its daemon, and TCP back-pressure reaches a client that
	// sends faster than its calls finish.
	MaxPending int
	// MaxPendingBytes, when positive (set before first use), bounds the
	// bytes of the Budget that requests of this connection hold; a single
	// request is admitted whatever its size.
	MaxPendingBytes int64

	fmu     sync.Mutex
	pending int           // requests admitted and not Done; guarded by fmu
	held    int64         // bytes of the budget they hold; guarded by fmu
	queue   []int64       // bytes held by requests admitted, not yet handed over; guarded by fmu
	room    chan struct{} // a request was Done
	closing chan struct{} // closed by Close

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
	return &GuardConn{Conn: c, max: max, onClose: onClose, created: time.Now(),
		room: make(chan struct{}, 1), closing: make(chan struct{})}
}

// flow reports whether requests are admitted against a budget or a bound.
func (g *GuardConn) flow() bool { return g.Budget != nil || g.MaxPending > 0 }

// tryAdmit admits a request of n bytes if there is room now.
func (g *GuardConn) tryAdmit(n int64) bool {
	g.fmu.Lock()
	defer g.fmu.Unlock()
	if !g.roomFor(n) {
		return false
	}
	taken := int64(0)
	if g.Budget != nil {
		var ok bool
		if taken, ok = g.Budget.TryAcquire(n); !ok {
			return false
		}
	}
	g.pending++
	g.held += taken
	g.queue = append(g.queue, taken)
	return true
}

// roomFor reports whether this connection may admit a request of n bytes;
// called with fmu.
func (g *GuardConn) roomFor(n int64) bool {
	if g.MaxPending > 0 && g.pending >= g.MaxPending {
		return false
	}
	return g.MaxPendingBytes <= 0 || g.held == 0 || g.held+n <= g.MaxPendingBytes
}

// errClosedWaiting ends a read that waited for room on a connection that
// was closed meanwhile.
var errClosedWaiting = fmt.Errorf("wire: connection closed while a request waited for room: %w", net.ErrClosed)

// admit waits until a request of n bytes has room, or the connection is
// closed.
func (g *GuardConn) admit(n int64) error {
	for {
		g.fmu.Lock()
		if g.roomFor(n) {
			g.pending++
			g.fmu.Unlock()
			break
		}
		g.fmu.Unlock()
		select {
		case <-g.room:
		case <-g.closing:
			return errClosedWaiting
		}
	}
	taken := int64(0)
	if g.Budget != nil {
		var ok bool
		if taken, ok = g.Budget.Acquire(g.closing, n); !ok {
			g.Done(0)
			return errClosedWaiting
		}
	}
	g.fmu.Lock()
	g.held += taken
	g.queue = append(g.queue, taken)
	g.fmu.Unlock()
	return nil
}

// Dispatched hands over the oldest request read whole: its handler owns
// what it holds from now and gives it back with Done(n). ok is false when
// the guard admitted no such request (no flow control, or the connection
// failed and gave it back already).
func (g *GuardConn) Dispatched() (n int64, ok bool) {
	g.fmu.Lock()
	defer g.fmu.Unlock()
	if len(g.queue) == 0 {
		return 0, false
	}
	n = g.queue[0]
	// Shift rather than reslice: the queue stays short (what one read
	// holds), and its array is reused instead of reallocated every time.
	g.queue = g.queue[:copy(g.queue, g.queue[1:])]
	return n, true
}

// Done gives back what a request handed over by Dispatched held: n bytes
// of the budget and its place among the requests in hand.
func (g *GuardConn) Done(n int64) {
	g.fmu.Lock()
	g.pending--
	g.held -= n
	g.fmu.Unlock()
	if g.Budget != nil {
		g.Budget.Release(n)
	}
	select {
	case g.room <- struct{}{}:
	default:
	}
}

// releaseQueued gives back what requests admitted and never handed over
// hold.
func (g *GuardConn) releaseQueued() {
	g.fmu.Lock()
	q := g.queue
	g.queue = nil
	g.pending -= len(q)
	for _, n := range q {
		g.held -= n
	}
	g.fmu.Unlock()
	for _, n := range q {
		if g.Budget != nil {
			g.Budget.Release(n)
		}
	}
}

// Read implements net.Conn, checking frame headers in the data it returns.
func (g *GuardConn) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	for {
		mid := g.hdrN > 0 || g.bodyRem > 0
		var n int
		var err error
		if len(g.stash) > 0 {
			n = copy(p, g.stash)
			g.stash = g.stash[n:]
			if len(g.stash) == 0 {
				err, g.stashErr = g.stashErr, nil
			}
		} else {
			if g.Timeouts != nil {
				g.armRead(mid)
			}
			n, err = g.Conn.Read(p)
		}
		if n > 0 {
			frames := g.frames
			k, cerr := g.scan(p[:n])
			if cerr != nil {
				g.fail(cerr)
				return 0, cerr
			}
			if k < n {
				// The rest starts a request that must wait for room: hand
				// over the requests before it first, so that they can run.
				g.stash = append(append([]byte(nil), p[k:n]...), g.stash...)
				if err != nil {
					g.stashErr, err = err, nil
				}
				n = k
			}
			if (g.hdrN > 0 || g.bodyRem > 0) && (!mid || g.frames != frames) {
				g.frameStart = time.Now() // a new frame began in this read
			}
			if err != nil {
				g.fail(err)
			}
			return n, err
		}
		if err != nil && g.Timeouts != nil && !mid && g.frames > 0 && errors.Is(err, os.ErrDeadlineExceeded) &&
			g.Timeouts.Busy != nil && g.Timeouts.Busy() {
			continue // quiet, but waiting for its calls' replies: not idle
		}
		if err != nil {
			g.fail(err)
		}
		return n, err
	}
}

// fail makes err the sticky read error and gives back what the requests
// read but never handed over held.
func (g *GuardConn) fail(err error) {
	if g.err == nil {
		g.err = err
	}
	g.releaseQueued()
}

// prefixLen is the start of a request body the guard of a daemon checks
// before rpcx decodes it: service path, service method and the length of
// the metadata, each with its length.
const prefixLen = 4 + len(ServicePath) + 4 + len(ServiceMethod) + 4

// MaxMetaLen bounds the metadata section of a request: rpcx decodes it
// into a map before anything else sees it. Object ids and method names
// are bounded far below it (gopyro.MaxNameLen).
const MaxMetaLen = 64 << 10

// scan advances the frame parser over b. It returns how many bytes of b
// may be handed over now: fewer than len(b) when a request that has to
// wait for room begins after one that ended in b.
func (g *GuardConn) scan(b []byte) (int, error) {
	pos := 0
	ended := false // a frame ended in b
	hs := 0        // where the current header began in b
	for pos < len(b) {
		if g.bodyRem > 0 {
			k := min(int64(len(b)-pos), g.bodyRem)
			if g.Strict && g.preN < prefixLen {
				g.preN += copy(g.pre[g.preN:], b[pos:pos+int(k)])
				if g.preN == prefixLen {
					if err := g.checkPrefix(); err != nil {
						g.rejectFrame(g.bodyRem-k, err)
						return pos, err
					}
				}
			}
			g.bodyRem -= k
			pos += int(k)
			if g.bodyRem == 0 {
				g.frames++
				ended = true
			}
			continue
		}
		if g.hdrN == 0 {
			hs = pos
		}
		k := copy(g.hdr[g.hdrN:], b[pos:])
		g.hdrN += k
		pos += k
		if g.hdr[0] != rpcxMagic {
			if g.frames == 0 && g.hdr[0] == 'P' {
				// Perhaps a Python Pyro daemon refusing gopyro's frame:
				// its answer starts "PYRO" and the protocol version.
				if g.hdrN < 6 {
					continue
				}
				if string(g.hdr[:4]) == "PYRO" {
					return pos, &PyroPeerError{Version: binary.BigEndian.Uint16(g.hdr[4:6])}
				}
			}
			return pos, fmt.Errorf("wire: bad magic byte 0x%02x: not a gopyro peer", g.hdr[0])
		}
		if g.hdrN < frameHeaderLen {
			continue
		}
		n := int64(binary.BigEndian.Uint32(g.hdr[headerLen:frameHeaderLen]))
		if err := g.checkHeader(n); err != nil {
			if g.Strict || (g.ReplyOversize && errors.Is(err, ErrFrameTooLarge)) {
				g.rejectFrame(n-int64(len(b)-pos), err)
			}
			return pos, err
		}
		if g.flow() && !g.tryAdmit(n) {
			if ended {
				g.hdrN = 0 // scan this header again when it is handed over
				return hs, nil
			}
			if err := g.admit(n); err != nil {
				return pos, err
			}
			if g.frames == 0 {
				g.created = time.Now() // the handshake bound runs from here
			}
		}
		g.bodyRem, g.bodyLen = n, n
		g.hdrN = 0
		g.preN = 0
		if n == 0 {
			g.frames++
			ended = true
		}
	}
	return len(b), nil
}

// checkHeader checks a whole frame header announcing a body of n bytes.
func (g *GuardConn) checkHeader(n int64) error {
	flags := g.hdr[flagsOffset]
	if flags&compressMask != 0 {
		return errors.New("wire: compressed frames are not accepted")
	}
	if n > g.max {
		return fmt.Errorf("%w: %d > %d bytes", ErrFrameTooLarge, n, g.max)
	}
	if !g.Strict {
		return nil
	}
	switch {
	case flags&responseMask != 0:
		return errors.New("wire: a reply where a request was expected")
	case flags&heartbeatMask != 0:
		return errors.New("wire: heartbeat frames are not accepted")
	case flags&statusMask != 0:
		return errors.New("wire: a request with an error status")
	case g.hdr[serializeOffset]>>4 != byte(protocol.SerializeNone):
		return fmt.Errorf("wire: serialize type %d is not gopyro's (%d)", g.hdr[serializeOffset]>>4, protocol.SerializeNone)
	case n < int64(prefixLen)+4:
		return fmt.Errorf("wire: a request body of %d bytes is too short", n)
	}
	return nil
}

// checkPrefix checks the start of a request body (in g.pre): gopyro's
// route and a bounded metadata section.
func (g *GuardConn) checkPrefix() error {
	b := g.pre[:]
	field := func(want string) bool {
		n := binary.BigEndian.Uint32(b)
		ok := n == uint32(len(want)) && string(b[4:4+len(want)]) == want
		b = b[4+len(want):]
		return ok
	}
	if !field(ServicePath) || !field(ServiceMethod) {
		return errors.New("wire: not a gopyro request (unknown service path or method)")
	}
	meta := int64(binary.BigEndian.Uint32(b))
	if meta > MaxMetaLen {
		return fmt.Errorf("wire: request metadata of %d bytes (the limit is %d)", meta, MaxMetaLen)
	}
	if int64(prefixLen)+meta+4 > g.bodyLen {
		return fmt.Errorf("wire: request metadata of %d bytes in a body of %d", meta, g.bodyLen)
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

// PyroPeerError reports a peer that answered in Python Pyro's protocol
// (Version 48 is Pyro4's, 502 Pyro5's): a Python daemon refusing a gopyro
// frame, which it never ran.
type PyroPeerError struct{ Version uint16 }

func (e *PyroPeerError) Error() string {
	return fmt.Sprintf("wire: the peer speaks Python Pyro (protocol %d), not gopyro", e.Version)
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
		close(g.closing)
		g.releaseQueued()
		if g.onClose != nil {
			g.onClose()
		}
	})
	return err
}
