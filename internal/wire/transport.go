package wire

import (
	"context"
	"crypto/tls"
	"sync"
	"time"

	rpcxlog "github.com/smallnest/rpcx/log"
	"github.com/smallnest/rpcx/protocol"
	"github.com/smallnest/rpcx/server"
	"github.com/smallnest/rpcx/share"
)

// ServeNetwork is the network name gopyro passes to rpcx's ServeListener.
// It is deliberately not "tcp": for tcp rpcx puts a cmux in front of the
// listener (for its HTTP gateway and JSON-RPC), which would hide gopyro's
// connection wrapper and cost a goroutine per connection.
const ServeNetwork = "gopyro"

// FrameOverhead is added to a configured maximum message size to get the
// maximum frame body: route names and metadata travel in the frame too.
const FrameOverhead = 64 << 10

var quietOnce sync.Once

// QuietRPCX replaces rpcx's package-global logger, which writes to stdout by
// default, with one that discards. It runs once per process, before the
// first gopyro server or client starts; gopyro reports what matters through
// its own errors and the daemon's *slog.Logger.
func QuietRPCX() {
	quietOnce.Do(rpcxlog.SetDummyLogger)
}

// NewServer returns an rpcx server with gopyro's one route and rpcx's HTTP
// gateway and JSON-RPC turned off.
func NewServer(h server.Handler) *server.Server {
	QuietRPCX()
	s := server.NewServer()
	s.DisableHTTPGateway = true
	s.DisableJSONRPC = true
	s.AddHandler(ServicePath, ServiceMethod, h) // before Serve: the router map is not locked
	s.Plugins.Add(requestKeeper{})
	return s
}

// requestKey finds the request message in a handler's context (rpcx does
// not hand it out otherwise); see [Request].
type requestKey struct{}

// requestKeeper is an rpcx server plugin that keeps each request message
// in its context.
type requestKeeper struct{}

func (requestKeeper) PostReadRequest(ctx context.Context, r *protocol.Message, err error) error {
	if sc, ok := ctx.(*share.Context); ok && err == nil {
		sc.SetValue(requestKey{}, r)
	}
	return nil
}

// Request returns the request message a handler is serving, for
// [GuardConn.WriteReply].
func Request(c *server.Context) (*protocol.Message, bool) {
	r, ok := c.Get(requestKey{}).(*protocol.Message)
	return r, ok
}

// DialOptions configures [DialClient].
type DialOptions struct {
	TLS            *tls.Config
	MaxFrame       int64         // largest reply frame body accepted
	ConnectTimeout time.Duration // 0: 5s
}
