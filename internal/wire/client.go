package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/smallnest/rpcx/protocol"
)

// FrameOverhead is added to a configured maximum message size to get the
// maximum frame body: route names and metadata travel in the frame too.
const FrameOverhead = 64 << 10

// readBufferSize is the client's read buffer: replies up to it cost one
// read each.
const readBufferSize = 64 << 10

// DefaultConnectTimeout bounds a dial when DialOptions.ConnectTimeout is 0.
const DefaultConnectTimeout = 5 * time.Second

// DialOptions configures [DialClient].
type DialOptions struct {
	TLS            *tls.Config
	MaxFrame       int64         // largest reply frame body accepted
	ConnectTimeout time.Duration // 0: DefaultConnectTimeout
}

// Client is gopyro's side of a connection to a daemon. It speaks rpcx's
// frame format (the daemon is an rpcx server) but not through rpcx's
// client: that one copies every request into a frame buffer, and turns
// every reply into a map of nine strings before the caller sees it.
// A Client writes a request's header and payload pieces with one writev,
// reads each reply into one buffer, and matches replies to callers by
// sequence number. It is safe for concurrent use.
type Client struct {
	gc        *GuardConn
	raw       syscall.RawConn  // the socket, to see that the peer closed it; nil if none
	peek      func(fd uintptr) // made once: sets peeked; called with mu held
	peeked    bool             // guarded by mu
	lastReply time.Time        // when the last reply arrived; guarded by mu
	seq       atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan<- Reply // guarded by mu
	err     error                   // why the connection ended; guarded by mu
}

// Reply is a daemon's answer to one request.
type Reply struct {
	Meta    map[string]string // nil when the reply has none
	Payload []byte            // owned by the caller
}

// Call is one request frame.
type Call struct {
	Meta    map[string]string
	Payload [][]byte // pieces, sent back to back with writev
	Oneway  bool
}

// ServiceError is an error the peer's rpcx layer reported instead of a
// reply (an oversized request, for example).
type ServiceError string

func (e ServiceError) Error() string { return string(e) }

// ErrClientClosed is returned by calls on a closed or broken connection.
var ErrClientClosed = errors.New("wire: connection closed")

// DialClient connects to a daemon at network/address.
func DialClient(ctx context.Context, network, address string, o DialOptions) (*Client, error) {
	conn, err := Dial(ctx, network, address, o)
	if err != nil {
		return nil, err
	}
	return NewClient(conn, o.MaxFrame), nil
}

// Dial makes a connection to network/address for a client: TCP_NODELAY
// set, TLS-wrapped when o.TLS is set, bounded by o.ConnectTimeout.
func Dial(ctx context.Context, network, address string, o DialOptions) (net.Conn, error) {
	timeout := o.ConnectTimeout
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, network, address)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if o.TLS != nil {
		cfg := o.TLS
		if cfg.ServerName == "" {
			// As tls.Dial does: verify the name dialled.
			cfg = cfg.Clone()
			if host, _, err := net.SplitHostPort(address); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	return conn, nil
}

// NewClient speaks to a daemon over conn, already connected (and, where
// wanted, TLS-wrapped); maxFrame bounds a reply frame's body.
func NewClient(conn net.Conn, maxFrame int64) *Client {
	c := &Client{pending: map[uint64]chan<- Reply{}}
	c.gc = NewGuardConn(conn, maxFrame, nil)
	under := conn
	if tc, ok := conn.(*tls.Conn); ok {
		under = tc.NetConn()
	}
	if sc, ok := under.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
		c.peek = func(fd uintptr) {
			var b [1]byte
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			c.peeked = (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN && err != syscall.EINTR)
		}
	}
	c.seq.Store(SeqBase)
	go c.read()
	return c
}

// Send writes r and, unless it is oneway, waits for the reply or for ctx.
func (c *Client) Send(ctx context.Context, r Call) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err // a request whose caller gave up is not sent
	}
	seq := c.seq.Add(1)
	var ch chan Reply
	if !r.Oneway {
		ch = make(chan Reply, 1)
	}
	c.mu.Lock()
	if c.err == nil && len(c.pending) == 0 && time.Since(c.lastReply) > idleCheck && c.peerClosed() {
		// The daemon closed the connection (it stopped or restarted),
		// and the reader has not seen it yet.
		c.mu.Unlock()
		c.fail(io.EOF)
		c.mu.Lock()
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return Reply{}, &NotSentError{Err: err}
	}
	if ch != nil {
		c.pending[seq] = ch
	}
	c.mu.Unlock()

	n := 0
	for _, p := range r.Payload {
		n += len(p)
	}
	bufs := make(net.Buffers, 0, 1+len(r.Payload))
	bufs = append(bufs, requestHead(seq, r.Oneway, r.Meta, n))
	bufs = append(bufs, r.Payload...)
	if err := c.gc.writeBuffersCtx(ctx, bufs); err != nil {
		c.fail(err) // a partial frame may have gone out: the connection is done
		if cerr := ctx.Err(); cerr != nil {
			return Reply{}, cerr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The connection's deadline is the context's: it may fire a
			// moment before the context says so.
			return Reply{}, context.DeadlineExceeded
		}
		return Reply{}, c.closedErr()
	}
	if ch == nil {
		return Reply{}, nil
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return Reply{}, c.closedErr()
		}
		if msg, isErr := rep.Meta[protocol.ServiceError]; isErr && rep.Payload == nil {
			return Reply{}, ServiceError(msg)
		}
		return rep, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, seq)
		c.mu.Unlock()
		if errors.Is(ctx.Err(), context.Canceled) {
			c.cancel(seq, r.Meta[MetaAuth])
		}
		return Reply{}, ctx.Err()
	}
}

// cancelTimeout bounds the write of a Cancel request.
const cancelTimeout = time.Second

// cancel tells the daemon that the caller of request seq gave up, so that
// the method's context is cancelled there too (a oneway Cancel on the
// built-in object; best effort: the call's own error is what counts).
func (c *Client) cancel(seq uint64, token string) {
	args, err := EncodeArray(seq)
	if err != nil {
		return
	}
	meta := map[string]string{MetaObject: gopyro.DaemonID, MetaMethod: MethodCancel, MetaOneway: "1"}
	if token != "" {
		meta[MetaAuth] = token
	}
	ctx, stop := context.WithTimeout(context.Background(), cancelTimeout)
	defer stop()
	_, _ = c.Send(ctx, Call{Meta: meta, Payload: [][]byte{args}, Oneway: true})
}

func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// NotSentError is the error of a request that was not sent because the
// connection had already ended: it can safely be sent again on another.
type NotSentError struct{ Err error }

func (e *NotSentError) Error() string { return "request not sent: " + e.Err.Error() }
func (e *NotSentError) Unwrap() error { return e.Err }

// idleCheck is how long a connection must have been quiet before a
// request checks that the daemon has not closed it: calls back to back
// skip the system call.
const idleCheck = 20 * time.Microsecond

// peerClosed reports, without blocking or consuming anything, that the
// peer's end of the connection is closed: the end of file is waiting to
// be read. Only idle connections are checked (no request in flight), so
// a reply being read is never mistaken for it. Called with c.mu held.
func (c *Client) peerClosed() bool {
	if c.raw == nil {
		return false
	}
	c.peeked = false
	_ = c.raw.Control(c.peek)
	return c.peeked
}

// Answered reports that a reply arrived on the connection: the peer is a
// gopyro daemon (a Python Pyro daemon answers a gopyro frame with a
// refusal that fails the connection with a *PyroPeerError).
func (c *Client) Answered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.lastReply.IsZero()
}

// Broken reports that the connection has ended.
func (c *Client) Broken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil
}

// Close ends the connection; calls waiting for replies fail.
func (c *Client) Close() error {
	c.fail(ErrClientClosed)
	err := c.gc.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// fail ends the connection with err (the first error wins) and releases
// every waiting caller.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if !errors.Is(err, ErrClientClosed) {
		err = fmt.Errorf("%w: %w", ErrClientClosed, err)
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, ch := range pending {
		close(ch)
	}
	_ = c.gc.Close()
}

// read receives reply frames until the connection ends.
func (c *Client) read() {
	br := bufio.NewReaderSize(c.gc, readBufferSize)
	var head [frameHeaderLen]byte
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			c.fail(err)
			return
		}
		h := protocol.Header(head[:headerLen])
		body := make([]byte, binary.BigEndian.Uint32(head[headerLen:frameHeaderLen])) // bounded by the guard
		if _, err := io.ReadFull(br, body); err != nil {
			c.fail(err)
			return
		}
		if h.MessageType() != protocol.Response || h.IsHeartbeat() {
			continue
		}
		rep, err := parseReply(body, h.MessageStatusType() == protocol.Error)
		if err != nil {
			c.fail(err)
			return
		}
		seq := h.Seq()
		if seq == 0 && h.MessageStatusType() == protocol.Error {
			// The daemon refused the connection itself (RefusalFrame).
			c.fail(ServiceError(rep.Meta[protocol.ServiceError]))
			return
		}
		c.mu.Lock()
		ch, ok := c.pending[seq]
		delete(c.pending, seq)
		c.lastReply = time.Now()
		c.mu.Unlock()
		if ok {
			ch <- rep
		}
	}
}

// parseReply reads a frame body: service path, method, metadata, payload.
func parseReply(b []byte, status bool) (Reply, error) {
	var rep Reply
	var sp, sm, meta, payload []byte
	for _, f := range []*[]byte{&sp, &sm, &meta, &payload} {
		var ok bool
		if *f, b, ok = lenPrefixed(b); !ok {
			return rep, errors.New("wire: truncated reply frame")
		}
	}
	for len(meta) > 0 {
		k, rest, ok := lenPrefixed(meta)
		if !ok {
			return rep, errors.New("wire: truncated reply metadata")
		}
		v, rest, ok := lenPrefixed(rest)
		if !ok {
			return rep, errors.New("wire: truncated reply metadata")
		}
		meta = rest
		if rep.Meta == nil {
			rep.Meta = make(map[string]string, 2)
		}
		rep.Meta[string(k)] = string(v)
	}
	if !status {
		rep.Payload = payload
	} else if _, ok := rep.Meta[protocol.ServiceError]; !ok {
		return rep, errors.New("wire: error reply without a message")
	}
	return rep, nil
}

// lenPrefixed splits a 4-byte big-endian length and that many bytes off b.
func lenPrefixed(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, b, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, b, false
	}
	return b[4 : 4+n : 4+n], b[4+n:], true
}

// requestHead encodes a request frame up to its payload.
func requestHead(seq uint64, oneway bool, meta map[string]string, payloadLen int) []byte {
	var h protocol.Header
	h[0] = protocol.MagicNumber()
	h.SetMessageType(protocol.Request)
	h.SetSerializeType(protocol.SerializeNone)
	h.SetOneway(oneway)
	h.SetSeq(seq)
	return frameHead(h, ServicePath, ServiceMethod, meta, payloadLen)
}
