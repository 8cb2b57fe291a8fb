package proxy_test

import (
	"errors"
	"net"
	"testing"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/rpcxserver"
	"github.com/gopyro/gopyro/internal/wire"
	"github.com/gopyro/gopyro/proxy"
)

// liar answers every call with the same bytes.
type liar []byte

func (l liar) ServeRequest(req *wire.Request, w wire.ReplyWriter) { _ = w.Reply(l) }

// TestMalformedReply: a reply that is not a valid encoding is the peer's
// protocol error, not a problem with the caller's arguments or types.
func TestMalformedReply(t *testing.T) {
	for name, payload := range map[string][]byte{
		"never-used code":  {0xc1},
		"not an array":     {0x01},
		"lying array size": {0xdd, 0x0f, 0xff, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := rpcxserver.New(liar(payload), rpcxserver.Limits{MaxFrame: 1 << 20})
			t.Cleanup(func() { ln.Close(); srv.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_ = srv.ServeConn(c, nil, nil)
				}
			}()
			p, err := proxy.NewURI(gopyro.NewPyroURI("x", "127.0.0.1", ln.Addr().(*net.TCPAddr).Port))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			_, err = proxy.Call[int](t.Context(), p, "M")
			if !errors.Is(err, gopyro.ErrProtocol) {
				t.Fatalf("malformed reply: %v (code %v), want a protocol error", err, gopyro.CodeOf(err))
			}
		})
	}
}
