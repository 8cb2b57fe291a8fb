package daemon_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/smallnest/rpcx/protocol"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/internal/wire"
)

// FuzzServeConn feeds whole arbitrary connections to a daemon over
// net.Pipe. Whatever a connection carries, the daemon must not panic, and
// once it has ended every call, budget byte and connection slot it took
// must come back; a good client is served afterwards.
func FuzzServeConn(f *testing.F) {
	frame := func(seq uint64, meta map[string]string, payload []byte, oneway bool) []byte {
		m := protocol.NewMessage()
		m.SetSeq(seq)
		m.SetOneway(oneway)
		m.ServicePath, m.ServiceMethod = wire.ServicePath, wire.ServiceMethod
		m.Metadata = meta
		m.Payload = payload
		return m.Encode()
	}
	call := frame(1, map[string]string{wire.MetaObject: "c", wire.MetaMethod: "Quick"}, []byte{0x90}, false)
	f.Add(call)
	f.Add(append(append([]byte(nil), call...), call...))
	f.Add(frame(2, map[string]string{wire.MetaObject: "c", wire.MetaMethod: "Any"}, []byte{0x91, 0x93, 1, 2, 3}, false))
	f.Add(frame(3, map[string]string{wire.MetaObject: "c", wire.MetaMethod: "Quick", wire.MetaOneway: "1"}, []byte{0x90}, true))
	f.Add(frame(4, map[string]string{wire.MetaObject: "c", wire.MetaMethod: "batch", wire.MetaBatch: "1"},
		[]byte{0x91, 0x92, 0xa5, 'Q', 'u', 'i', 'c', 'k', 0xc4, 0x01, 0x90}, false))
	f.Add(frame(5, map[string]string{wire.MetaObject: "Pyro.Daemon", wire.MetaMethod: "Cancel", wire.MetaOneway: "1"}, []byte{0x91, 0x01}, true))
	f.Add(call[:25])

	d, err := daemon.New(daemon.WithAdvertise("127.0.0.1:1"), daemon.WithMaxBytesInFlight(1<<20),
		daemon.WithMaxConnInFlight(4), daemon.WithFrameTimeout(time.Second), daemon.WithHandshakeTimeout(time.Second))
	if err != nil {
		f.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Register(&Tally{open: make(chan struct{})}, daemon.WithID("c")); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		go func() { _, _ = io.Copy(io.Discard, a) }()
		go func() { _, _ = a.Write(data); _ = a.Close() }()
		if err := d.ServeConn(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 5*time.Second, "the connection's calls and bytes to come back", func() bool {
			s := d.Stats()
			return s.Conns == 0 && s.InFlight == 0 && s.BytesInFlight == 0
		})
	})
}
