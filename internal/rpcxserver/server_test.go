package rpcxserver

import (
	"bytes"
	"net"
	"sync"
	"testing"

	"github.com/gopyro/gopyro/internal/wire"
)

// recorder answers every request with its payload and keeps the requests.
type recorder struct {
	mu   sync.Mutex
	reqs []wire.Request
}

func (r *recorder) ServeRequest(req *wire.Request, w wire.ReplyWriter) {
	r.mu.Lock()
	r.reqs = append(r.reqs, *req)
	r.mu.Unlock()
	if !req.Oneway {
		_ = w.Reply(req.Payload[:1], req.Payload[1:])
	}
}

func serve(t *testing.T, h wire.Handler, tag any) *wire.Client {
	t.Helper()
	s := New(h, Limits{MaxFrame: 64 << 20})
	t.Cleanup(func() { _ = s.Close() })
	server, client := net.Pipe()
	closed := make(chan struct{})
	t.Cleanup(func() { <-closed })
	if err := s.ServeConn(server, tag, func() { close(closed) }); err != nil {
		t.Fatal(err)
	}
	cl := wire.NewClient(client, 64<<20)
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func call(t *testing.T, cl *wire.Client, meta map[string]string, payload []byte) wire.Reply {
	t.Helper()
	rep, err := cl.Send(t.Context(), wire.Call{Meta: meta, Payload: [][]byte{payload}})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestRequestFields: the handler sees gopyro's request, with the tag given
// to ServeConn (so rpcx served the connection this package handed it, not
// one of a cmux in front of it).
func TestRequestFields(t *testing.T) {
	rec := &recorder{}
	tag := new(int)
	cl := serve(t, rec, tag)
	meta := map[string]string{wire.MetaObject: "o", wire.MetaMethod: "m", wire.MetaAuth: "tok",
		wire.MetaCorrelation: "c1", wire.MetaTimeout: wire.FormatTimeout(1500e6), wire.MetaBatch: wire.BatchAll}
	if rep := call(t, cl, meta, []byte("hello")); string(rep.Payload) != "hello" {
		t.Fatalf("reply %q", rep.Payload)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.reqs[0]
	if r.Object != "o" || r.Method != "m" || r.Token != "tok" || r.Correlation != "c1" || r.Timeout != 1500e6 ||
		r.Batch != wire.BatchAll || r.Oneway || r.Conn != tag {
		t.Fatalf("request %+v", r)
	}
}

// TestPayloadNotReused: a payload stays intact after later requests, which
// is what lets wire.Request.Payload belong to the handler.
func TestPayloadNotReused(t *testing.T) {
	rec := &recorder{}
	cl := serve(t, rec, nil)
	meta := map[string]string{wire.MetaObject: "o", wire.MetaMethod: "m"}
	first := bytes.Repeat([]byte{'a'}, 4096)
	call(t, cl, meta, first)
	for i := range 20 {
		call(t, cl, meta, bytes.Repeat([]byte{byte('b' + i)}, 4096))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !bytes.Equal(rec.reqs[0].Payload, first) {
		t.Fatal("rpcx reused the buffer of an earlier request")
	}
}

// TestLargeReplyDirect: a reply from DirectReplySize on goes out through
// the writev path and arrives whole.
func TestLargeReplyDirect(t *testing.T) {
	cl := serve(t, &recorder{}, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), DirectReplySize/16+1)
	rep := call(t, cl, map[string]string{wire.MetaObject: "o", wire.MetaMethod: "m"}, big)
	if !bytes.Equal(rep.Payload, big) {
		t.Fatalf("large reply: %d bytes, want %d", len(rep.Payload), len(big))
	}
}

// failer answers with an error payload.
type failer struct{}

func (failer) ServeRequest(req *wire.Request, w wire.ReplyWriter) { _ = w.Fail([]byte("E")) }

func TestFailFlagsTheReply(t *testing.T) {
	cl := serve(t, failer{}, nil)
	rep := call(t, cl, map[string]string{wire.MetaObject: "o", wire.MetaMethod: "m"}, []byte{0x90})
	if rep.Meta[wire.MetaError] != "1" || string(rep.Payload) != "E" {
		t.Fatalf("error reply: %v %q", rep.Meta, rep.Payload)
	}
}

func TestServeConnAfterClose(t *testing.T) {
	s := New(&recorder{}, Limits{MaxFrame: 1 << 20})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer b.Close()
	if err := s.ServeConn(a, nil, nil); err == nil {
		t.Fatal("ServeConn after Close succeeded")
	}
}
