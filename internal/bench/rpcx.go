package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/smallnest/rpcx/protocol"

	"github.com/gopyro/gopyro/internal/rpcxserver"
)

// RPCX serves a raw rpcx handler that echoes the payload (or counts a
// oneway call). Its client speaks rpcx's frames through rpcx's own codec
// (protocol.Message's Encode and Decode, as rpcx's client does): rpcx's
// client package itself is left out of the gopyro binary, as it brings a
// second mDNS library, ICMP ping and more (rpcxclient_test.go's
// BenchmarkRPCXClient compares the two).
func RPCX() (*System, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	var notes atomic.Int64
	stop := rpcxserver.ServeBaseline(ln, func(meta map[string]string, payload []byte) ([]byte, bool) {
		if meta["w"] == "1" {
			notes.Add(1)
			return nil, false
		}
		return payload, true
	})
	addr := ln.Addr().String()
	return &System{
		Name:   "rpcx",
		Shared: true,
		Dial: func(ctx context.Context) (Client, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return newRPCXClient(c), nil
		},
		Executed: notes.Load,
		Close:    stop,
		Addr:     addr,
	}, nil
}

// rpcxClient sends rpcx frames encoded by protocol.Message and matches the
// replies, decoded by protocol.Message, to callers by sequence number.
type rpcxClient struct {
	c   net.Conn
	seq atomic.Uint64
	wmu sync.Mutex

	mu      sync.Mutex
	pending map[uint64]chan *protocol.Message // guarded by mu
	err     error                             // guarded by mu
	done    chan struct{}
}

func newRPCXClient(c net.Conn) *rpcxClient {
	r := &rpcxClient{c: c, pending: map[uint64]chan *protocol.Message{}, done: make(chan struct{})}
	go r.read()
	return r
}

func (r *rpcxClient) read() {
	defer close(r.done)
	br := bufio.NewReaderSize(r.c, 64<<10)
	for {
		m := protocol.NewMessage()
		if err := m.Decode(br); err != nil {
			r.mu.Lock()
			r.err = err
			for _, ch := range r.pending {
				close(ch)
			}
			r.pending = nil
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		ch := r.pending[m.Seq()]
		delete(r.pending, m.Seq())
		r.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

func (r *rpcxClient) send(ctx context.Context, b []byte, oneway bool) ([]byte, error) {
	m := protocol.NewMessage()
	m.SetMessageType(protocol.Request)
	m.SetSerializeType(protocol.SerializeNone)
	seq := r.seq.Add(1)
	m.SetSeq(seq)
	if oneway {
		m.SetOneway(true)
		m.Metadata = map[string]string{"w": "1"}
	}
	m.ServicePath, m.ServiceMethod = "bench", "echo"
	m.Payload = b
	var ch chan *protocol.Message
	if !oneway {
		ch = make(chan *protocol.Message, 1)
		r.mu.Lock()
		if r.pending == nil {
			err := r.err
			r.mu.Unlock()
			return nil, err
		}
		r.pending[seq] = ch
		r.mu.Unlock()
	}
	data := m.EncodeSlicePointer()
	r.wmu.Lock()
	_, err := r.c.Write(*data)
	r.wmu.Unlock()
	protocol.PutData(data)
	if err != nil || oneway {
		return nil, err
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return nil, errors.New("rpcx baseline: connection closed")
		}
		if rep.MessageStatusType() == protocol.Error {
			return nil, fmt.Errorf("rpcx baseline: %s", rep.Metadata[protocol.ServiceError])
		}
		return rep.Payload, nil
	case <-ctx.Done():
		r.mu.Lock()
		delete(r.pending, seq)
		r.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (r *rpcxClient) Echo(ctx context.Context, b []byte) ([]byte, error) {
	return r.send(ctx, b, false)
}
func (r *rpcxClient) Oneway(ctx context.Context, b []byte) error {
	_, err := r.send(ctx, b, true)
	return err
}
func (r *rpcxClient) Close() error {
	err := r.c.Close()
	<-r.done
	return err
}
