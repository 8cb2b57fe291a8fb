package wire

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/smallnest/rpcx/protocol"
)

// request encodes a gopyro request frame; change edits its message first.
func request(seq uint64, payload []byte, change func(*protocol.Message)) []byte {
	m := protocol.NewMessage()
	m.SetSeq(seq)
	m.SetSerializeType(protocol.SerializeNone)
	m.ServicePath, m.ServiceMethod = ServicePath, ServiceMethod
	m.Metadata = map[string]string{MetaObject: "o", MetaMethod: "m"}
	m.Payload = payload
	if change != nil {
		change(m)
	}
	return m.Encode()
}

// A strict guard refuses what is not a gopyro request before rpcx decodes
// it, answering the frame with an error (issue 11 items 12 and 17).
func TestGuardStrict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*protocol.Message)
		want   string
	}{
		{"heartbeat", func(m *protocol.Message) { m.SetHeartbeat(true) }, "heartbeat"},
		{"json", func(m *protocol.Message) { m.SetSerializeType(protocol.JSON) }, "serialize type"},
		{"route", func(m *protocol.Message) { m.ServicePath = "Arith" }, "not a gopyro request"},
		{"reply", func(m *protocol.Message) { m.SetMessageType(protocol.Response) }, "a reply"},
		{"status", func(m *protocol.Message) { m.SetMessageStatusType(protocol.Error) }, "error status"},
		{"metadata", func(m *protocol.Message) {
			for i := range 20000 { // 20,000 small pairs: rpcx would build the map
				m.Metadata[strings.Repeat("k", 3)+string(rune('a'+i%26))+strings.Repeat("x", i%7)+itoa(i)] = ""
			}
		}, "metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			g := NewGuardConn(b, 1<<20, nil)
			g.Strict = true
			defer g.Close()
			replies := make(chan *protocol.Message, 1)
			go func() {
				m := protocol.NewMessage()
				if err := m.Decode(a); err == nil {
					replies <- m
				}
				close(replies)
				_, _ = io.Copy(io.Discard, a)
			}()
			go func() { _, _ = a.Write(request(7, []byte{0x90}, tc.change)) }()
			_, err := io.Copy(io.Discard, g)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("read: %v, want an error about %q", err, tc.want)
			}
			r, ok := <-replies
			if tc.name == "reply" { // nothing to answer a reply with
				return
			}
			if !ok || r.Seq() != 7 || r.MessageStatusType() != protocol.Error ||
				!strings.Contains(r.Metadata[protocol.ServiceError], tc.want) {
				t.Fatalf("reply: %+v", r)
			}
		})
	}
	// A good request passes.
	a, b := net.Pipe()
	g := NewGuardConn(b, 1<<20, nil)
	g.Strict = true
	go func() { _, _ = a.Write(request(1, []byte{0x90}, nil)); a.Close() }()
	m := protocol.NewMessage()
	if err := m.Decode(bufio.NewReader(g)); err != nil || m.Metadata[MetaObject] != "o" {
		t.Fatalf("good request: %v %+v", err, m)
	}
	g.Close()
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[n:])
		}
	}
}

// A connection with MaxPending requests in hand is not read further, but
// the requests already received in the same read are handed over first:
// two requests in one write, with room for one, both arrive in turn.
func TestGuardMaxPending(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	budget := NewBudget(1 << 20)
	g := NewGuardConn(b, 1<<20, nil)
	g.Strict, g.MaxPending, g.Budget = true, 1, budget
	defer g.Close()
	two := append(request(1, []byte{0x90}, nil), request(2, []byte{0x90}, nil)...)
	go func() { _, _ = a.Write(two) }()
	r := bufio.NewReaderSize(g, 1024) // as rpcx reads
	m := protocol.NewMessage()
	if err := m.Decode(r); err != nil || m.Seq() != 1 {
		t.Fatalf("first: %v", err)
	}
	n, ok := g.Dispatched()
	if !ok {
		t.Fatal("the first request holds nothing")
	}
	got := make(chan error, 1)
	go func() {
		m := protocol.NewMessage()
		err := m.Decode(r)
		if err == nil && m.Seq() != 2 {
			err = errors.New("wrong request")
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("the second request was read with the first in hand: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if budget.InUse() == 0 {
		t.Fatal("the budget holds nothing for the request in hand")
	}
	g.Done(n)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	n, _ = g.Dispatched()
	g.Done(n)
	if budget.InUse() != 0 {
		t.Fatalf("%d bytes still held", budget.InUse())
	}
}

// A read that waits for room ends when the connection is closed, and what
// the requests read but not handed over held is given back.
func TestGuardCloseWhileWaiting(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	first, second := request(1, []byte{0x90}, nil), request(2, []byte{0x90}, nil)
	// Room for the first request's body, not for both: the second waits
	// in the budget's line, where the test can see it.
	body := int64(len(first) - frameHeaderLen)
	budget := NewBudget(body * 3 / 2) // large requests may hold 7/8 of it

	g := NewGuardConn(b, 1<<20, nil)
	g.Strict, g.Budget = true, budget
	go func() { _, _ = a.Write(first); _, _ = a.Write(second) }()
	r := bufio.NewReaderSize(g, 1024)
	if err := protocol.NewMessage().Decode(r); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- protocol.NewMessage().Decode(r) }()
	waitFor(t, func() bool {
		budget.large.mu.Lock()
		defer budget.large.mu.Unlock()
		return len(budget.large.waiters) == 1
	})
	g.Close()
	if err := <-errc; err == nil {
		t.Fatal("the waiting read did not fail on close")
	}
	if budget.InUse() != 0 || budget.large.InUse() != 0 {
		t.Fatalf("%d bytes still held after close", budget.InUse())
	}
}
