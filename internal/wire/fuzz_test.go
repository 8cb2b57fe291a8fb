package wire

import (
	"bufio"
	"io"
	"net"
	"testing"

	"github.com/smallnest/rpcx/protocol"
)

// FuzzGuardConn feeds arbitrary bytes through a daemon's frame guard, read
// the way rpcx reads (bufio, then Message.Decode), handing each request
// over and finishing it. Whatever the bytes, the guard must not panic or
// hang, and every byte of the budget must come back.
func FuzzGuardConn(f *testing.F) {
	good := request(1, []byte{0x92, 0x01, 0x02}, nil)
	f.Add(good)
	f.Add(append(append([]byte(nil), good...), good...))
	f.Add(good[:20])
	f.Add(request(2, []byte{0x90}, func(m *protocol.Message) { m.SetHeartbeat(true) }))
	f.Add(request(3, []byte{0x90}, func(m *protocol.Message) { m.ServiceMethod = "other" }))
	f.Add([]byte{0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		budget := NewBudget(4096)
		g := NewGuardConn(b, 2048, nil)
		g.Strict, g.ReplyOversize, g.Budget, g.MaxPending, g.MaxPendingBytes = true, true, budget, 2, 1024
		go func() { _, _ = io.Copy(io.Discard, a) }() // error replies
		go func() { _, _ = a.Write(data); _ = a.Close() }()
		r := bufio.NewReaderSize(g, 1024)
		for {
			m := protocol.NewMessage()
			if err := m.Decode(r); err != nil {
				break
			}
			if n, ok := g.Dispatched(); ok {
				g.Done(n)
			}
		}
		_ = g.Close()
		if n := budget.InUse(); n != 0 {
			t.Fatalf("%d bytes of the budget not given back", n)
		}
	})
}
