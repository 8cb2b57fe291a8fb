package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/smallnest/rpcx/protocol"
)

// fakeServer accepts one connection and answers each request with what
// reply returns for it (nil: no answer).
func fakeServer(t *testing.T, reply func(h protocol.Header) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		go func() { <-t.Context().Done(); c.Close() }()
		var head [16]byte
		for {
			if _, err := readFull(c, head[:]); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(head[12:]))
			if _, err := readFull(c, body); err != nil {
				return
			}
			if b := reply(protocol.Header(head[:12])); b != nil {
				if _, err := c.Write(b); err != nil {
					return
				}
				if len(b) < 16 {
					return // a truncated frame, then hang up
				}
			}
		}
	}()
	return ln.Addr().String()
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// frame builds a reply frame for seq with metadata and payload.
func frame(seq uint64, status bool, meta map[string]string, payload []byte) []byte {
	var h protocol.Header
	h[0] = protocol.MagicNumber()
	h.SetMessageType(protocol.Response)
	h.SetSeq(seq)
	if status {
		h.SetMessageStatusType(protocol.Error)
	}
	var body bytes.Buffer
	put := func(b []byte) {
		_ = binary.Write(&body, binary.BigEndian, uint32(len(b)))
		body.Write(b)
	}
	put([]byte(ServicePath))
	put([]byte(ServiceMethod))
	var md bytes.Buffer
	for k, v := range meta {
		_ = binary.Write(&md, binary.BigEndian, uint32(len(k)))
		md.WriteString(k)
		_ = binary.Write(&md, binary.BigEndian, uint32(len(v)))
		md.WriteString(v)
	}
	put(md.Bytes())
	put(payload)
	out := append(h[:], make([]byte, 4)...)
	binary.BigEndian.PutUint32(out[12:], uint32(body.Len()))
	return append(out, body.Bytes()...)
}

func TestClientReplies(t *testing.T) {
	addr := fakeServer(t, func(h protocol.Header) []byte {
		switch h.Seq() - SeqBase {
		case 1:
			return frame(h.Seq(), false, map[string]string{MetaError: "1"}, []byte{0x90})
		case 2:
			return frame(h.Seq(), true, map[string]string{protocol.ServiceError: "too big"}, nil)
		case 3:
			return nil // never answered
		}
		return []byte{0x08, 0, 0, 0} // a truncated frame, then the server hangs up
	})
	c, err := DialClient(t.Context(), "tcp", addr, DialOptions{MaxFrame: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, err := c.Send(t.Context(), Call{Payload: [][]byte{{0x90}}})
	if err != nil || rep.Meta[MetaError] != "1" || !bytes.Equal(rep.Payload, []byte{0x90}) {
		t.Fatalf("reply 1: %+v %v", rep, err)
	}
	var se ServiceError
	if _, err := c.Send(t.Context(), Call{}); !errors.As(err, &se) || string(se) != "too big" {
		t.Fatalf("reply 2: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Send(ctx, Call{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reply 3: %v", err)
	}
	if _, err := c.Send(t.Context(), Call{}); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("reply 4: %v", err)
	}
	if !c.Broken() {
		t.Fatal("not broken after a bad frame")
	}
	if _, err := c.Send(t.Context(), Call{}); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("send after break: %v", err)
	}
}

func TestClientRefusesHugeReply(t *testing.T) {
	addr := fakeServer(t, func(h protocol.Header) []byte {
		b := frame(h.Seq(), false, nil, nil)
		binary.BigEndian.PutUint32(b[12:], 1<<31) // a lying 2 GiB body
		return b[:16]
	})
	c, err := DialClient(t.Context(), "tcp", addr, DialOptions{MaxFrame: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Send(t.Context(), Call{}); !errors.Is(err, ErrClientClosed) || !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("huge reply: %v", err)
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add(frame(1, false, map[string]string{"k": "v"}, []byte{0x90})[16:], false)
	f.Add(frame(1, true, map[string]string{"__rpcx_error__": "x"}, nil)[16:], true)
	f.Fuzz(func(t *testing.T, b []byte, status bool) {
		rep, err := parseReply(b, status)
		if err == nil && status && rep.Payload != nil {
			t.Fatal("an error reply with a payload")
		}
	})
}

// TestSendToStalledPeer: a peer that accepts but never reads costs a call
// at most its deadline, or its cancellation (issue 11, item 2).
func TestSendToStalledPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn // accepted, never read
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	defer func() {
		ln.Close()
		<-accepting
		for _, c := range held {
			c.Close()
		}
	}()
	big := make([]byte, 32<<20) // far more than the socket buffers hold
	for name, c := range map[string]struct {
		mk   func() (context.Context, context.CancelFunc)
		want error
	}{
		"deadline": {func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(t.Context(), 300*time.Millisecond)
		}, context.DeadlineExceeded},
		"cancel": {func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(name, func(t *testing.T) {
			cl, err := DialClient(t.Context(), "tcp", ln.Addr().String(), DialOptions{MaxFrame: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := c.mk()
			defer cancel()
			start := time.Now()
			_, err = cl.Send(ctx, Call{Meta: map[string]string{MetaObject: "o", MetaMethod: "m"}, Payload: [][]byte{big}})
			if !errors.Is(err, c.want) {
				t.Fatalf("send to a stalled peer: %v", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("send to a stalled peer took %v; the bound was 300ms", took)
			}
			if !cl.Broken() {
				t.Fatal("a connection with a partial frame on it was kept")
			}
		})
	}
}
