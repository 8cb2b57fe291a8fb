package bench

import (
	"context"
	"testing"

	"github.com/smallnest/rpcx/client"
	"github.com/smallnest/rpcx/protocol"
)

// BenchmarkRPCXClient compares the raw rpcx baseline's client (rpcx's
// frame codec, see rpcx.go) with rpcx's own client package on the same
// server: the baseline is only fair if the two are close. rpcx's client
// lives here, in a test, so that the gopyro binary does not link it.
func BenchmarkRPCXClient(b *testing.B) {
	s, err := RPCX()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	payload := make([]byte, 16)
	ctx := context.Background()
	b.Run("frames", func(b *testing.B) {
		c, err := s.Dial(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Echo(ctx, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rpcx-client", func(b *testing.B) {
		opt := client.DefaultOption
		opt.SerializeType = protocol.SerializeNone
		opt.Retries = 0
		c := client.NewClient(opt)
		if err := c.Connect("tcp", s.Addr); err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		var seq uint64 = 1 << 62
		b.ReportAllocs()
		for b.Loop() {
			m := protocol.NewMessage()
			m.SetMessageType(protocol.Request)
			m.SetSerializeType(protocol.SerializeNone)
			seq++
			m.SetSeq(seq)
			m.ServicePath, m.ServiceMethod = "bench", "echo"
			m.Payload = payload
			if _, _, err := c.SendRaw(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
