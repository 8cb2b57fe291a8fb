package rpcxserver

import (
	"net"

	"github.com/smallnest/rpcx/server"
)

// ServeBaseline serves plain rpcx on ln, for gopyro bench's "raw rpcx"
// baseline: one route, bench.echo, whose handler f gets each request's
// metadata and payload and returns the reply payload (reply false: none,
// as for a oneway call). It returns once rpcx accepts; stop closes it.
// It lives here because this package is the only one that touches rpcx's
// server.
func ServeBaseline(ln net.Listener, f func(meta map[string]string, payload []byte) (out []byte, reply bool)) (stop func() error) {
	Quiet()
	s := server.NewServer()
	s.DisableHTTPGateway, s.DisableJSONRPC = true, true
	s.AddHandler("bench", "echo", func(c *server.Context) error {
		out, ok := f(c.Metadata(), c.Payload())
		if !ok {
			return nil
		}
		return c.Write(out)
	})
	go func() { _ = s.ServeListener(network, ln) }()
	<-s.Started
	return s.Close
}
