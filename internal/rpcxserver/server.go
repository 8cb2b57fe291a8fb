package rpcxserver

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	rpcxlog "github.com/smallnest/rpcx/log"
	"github.com/smallnest/rpcx/protocol"
	"github.com/smallnest/rpcx/server"
	"github.com/smallnest/rpcx/share"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// network is the name passed to rpcx's ServeListener. It is deliberately
// not "tcp": for tcp rpcx puts a cmux in front of the listener (for its
// HTTP gateway and JSON-RPC), which would hide the guard around each
// connection and cost a goroutine per connection.
const network = "gopyro"

// DirectReplySize is the reply size from which replies are written with
// one writev straight from the handler's pieces ([wire.GuardConn.WriteReply])
// instead of rpcx's copy into a frame buffer.
const DirectReplySize = 256 << 10

var quietOnce sync.Once

// Quiet replaces rpcx's package-global logger, which writes to stdout,
// with one that discards. It runs once per process (the logger is read
// without a lock by every rpcx server), before the first rpcx server
// starts; [New] calls it.
func Quiet() { quietOnce.Do(rpcxlog.SetDummyLogger) }

// Server serves rpcx frames on the connections given to [Server.ServeConn].
type Server struct {
	h   wire.Handler
	lim Limits
	srv *server.Server
	ln  *chanListener

	startOnce sync.Once
	wg        sync.WaitGroup // the ServeListener goroutine
}

// Limits bound what a Server's connections hold.
type Limits struct {
	// MaxFrame is the largest request body accepted, in bytes.
	MaxFrame int64
	// Timeouts bound reads (nil: no bounds); their Busy is the tag's
	// Busy method when it has one.
	Timeouts *wire.ReadTimeouts
	// WriteTimeout (0: none) bounds every write of a reply.
	WriteTimeout time.Duration
	// Budget (nil: none) is charged the requests read and the replies
	// being written; reading waits while it is spent.
	Budget *wire.Budget
	// MaxPending (0: none) bounds the requests of one connection read and
	// not yet answered; reading from it waits while that many are.
	MaxPending int
	// MaxPendingBytes (0: none) bounds the bytes of Budget the requests of
	// one connection hold.
	MaxPendingBytes int64
}

// New returns a server that hands requests to h, within lim.
func New(h wire.Handler, lim Limits) *Server {
	Quiet()
	s := &Server{h: h, lim: lim, ln: newChanListener()}
	s.srv = server.NewServer()
	s.srv.DisableHTTPGateway = true
	s.srv.DisableJSONRPC = true
	s.srv.AddHandler(wire.ServicePath, wire.ServiceMethod, s.handle) // before serving: the router map is not locked
	s.srv.Plugins.Add(requestKeeper{})
	return s
}

// conn is a guarded connection with the handler's value for it.
type conn struct {
	*wire.GuardConn
	tag any
}

// ServeConn serves c until it closes; requests read from it carry tag as
// [wire.Request.Conn], and onClose runs once when it is closed. It returns
// at once (the connection is served by rpcx's goroutines), or
// net.ErrClosed after [Server.Close], having closed c.
func (s *Server) ServeConn(c net.Conn, tag any, onClose func()) error {
	s.startOnce.Do(func() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.srv.ServeListener(network, s.ln) // returns once Close closed the listener
		}()
	})
	gc := &conn{GuardConn: wire.NewGuardConn(c, s.lim.MaxFrame, onClose), tag: tag}
	gc.ReplyOversize, gc.Strict = true, true
	gc.WriteTimeout = s.lim.WriteTimeout
	gc.Budget, gc.MaxPending, gc.MaxPendingBytes = s.lim.Budget, s.lim.MaxPending, s.lim.MaxPendingBytes
	if s.lim.Timeouts != nil {
		t := *s.lim.Timeouts
		if b, ok := tag.(interface{ Busy() bool }); ok {
			t.Busy = b.Busy
		}
		gc.Timeouts = &t
	}
	select {
	case s.ln.conns <- gc:
		return nil
	case <-s.ln.done:
		_ = gc.Close()
		return net.ErrClosed
	}
}

// Close stops serving: it closes every connection rpcx holds and waits for
// rpcx's accept loop to end.
func (s *Server) Close() error {
	s.ln.shut()
	err := s.srv.Close()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// handle is the rpcx handler of gopyro's one route.
func (s *Server) handle(c *server.Context) error {
	r := replyPool.Get().(*reply)
	defer r.release()
	r.c = c
	k, _ := c.Get(requestKey{}).(*kept)
	if k != nil {
		r.msg = k.msg
	}
	gc, _ := c.Get(server.RemoteConnContextKey).(*conn)
	if gc != nil {
		r.gc = gc.GuardConn
		if k != nil && k.held {
			defer gc.Done(k.n) // after the reply is written
		}
	}
	defer func() {
		// A bug of the handler must not reach rpcx's recovery, which takes
		// a stack dump of every goroutine.
		if v := recover(); v != nil {
			if gc != nil {
				_ = gc.Close()
			}
		}
	}()
	oneway := r.msg != nil && r.msg.IsOneway()
	meta := c.Metadata()
	if marked := meta[wire.MetaOneway] == "1"; marked != oneway {
		// Not a gopyro peer: gopyro's client marks a oneway call both in
		// the header and in the metadata. Answer what can be answered;
		// drop the connection either way.
		if !oneway {
			_ = r.Fail(wire.EncodeError(&gopyro.Error{Code: gopyro.CodeProtocol, Op: "call",
				Message: "a request marked oneway in its metadata but not in its header"}))
		}
		if gc != nil {
			_ = gc.Close()
		}
		return nil
	}
	r.req = wire.ParseRequest(meta, c.Payload(), oneway)
	if r.msg != nil {
		r.req.Seq = r.msg.Seq()
	}
	if gc != nil {
		r.req.Conn = gc.tag
	}
	s.h.ServeRequest(&r.req, r) // the handler is done with both when it returns
	return nil
}

// reply is one request and the writer of its answer: one pooled value per
// request, so the seam costs no allocation.
type reply struct {
	req wire.Request
	c   *server.Context
	gc  *wire.GuardConn
	msg *protocol.Message
}

var replyPool = sync.Pool{New: func() any { return new(reply) }}

func (r *reply) release() {
	*r = reply{}
	replyPool.Put(r)
}

func (r *reply) Reply(payload ...[]byte) error {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	if r.gc != nil && r.gc.Budget != nil {
		// The reply is in memory until the peer takes it: count it, so
		// that replies nobody reads stop the reading of more requests.
		defer r.gc.Budget.Uncharge(r.gc.Budget.Charge(int64(n)))
	}
	if r.gc != nil && r.msg != nil && n >= DirectReplySize {
		// rpcx would copy the payload into a frame buffer first.
		return r.gc.WriteReply(r.msg, payload...)
	}
	var b []byte
	if len(payload) == 1 {
		b = payload[0]
	} else {
		b = bytes.Join(payload, nil)
	}
	return r.c.Write(b)
}

func (r *reply) Fail(errPayload []byte) error {
	if rm, ok := r.c.Get(share.ResMetaDataKey).(map[string]string); ok {
		rm[wire.MetaError] = "1"
	}
	return r.c.Write(errPayload)
}

// requestKey finds the request message in a handler's context (rpcx does
// not hand it out otherwise), as a *kept.
type requestKey struct{}

// kept is a request message and what it holds of its connection's flow
// control, handed over by the guard when rpcx had read it.
type kept struct {
	msg  *protocol.Message
	n    int64 // bytes of the budget it holds
	held bool  // it holds a place: give it back with Done(n)
}

// requestKeeper is an rpcx server plugin that keeps each request message
// in its context, with what it holds. It runs on the connection's reading
// goroutine, right after each request was read: requests are handed over
// in the order the guard admitted them.
type requestKeeper struct{}

func (requestKeeper) PostReadRequest(ctx context.Context, r *protocol.Message, err error) error {
	sc, ok := ctx.(*share.Context)
	if !ok || err != nil {
		return nil
	}
	k := &kept{msg: r}
	if gc, ok := sc.Value(server.RemoteConnContextKey).(*conn); ok {
		k.n, k.held = gc.Dispatched()
	}
	sc.SetValue(requestKey{}, k)
	return nil
}

// chanListener is the net.Listener rpcx accepts from: its connections are
// the ones ServeConn hands over.
type chanListener struct {
	conns    chan net.Conn
	done     chan struct{}
	shutOnce sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) shut()          { l.shutOnce.Do(func() { close(l.done) }) }
func (l *chanListener) Close() error   { l.shut(); return nil }
func (l *chanListener) Addr() net.Addr { return chanAddr{} }

type chanAddr struct{}

func (chanAddr) Network() string { return network }
func (chanAddr) String() string  { return network }
