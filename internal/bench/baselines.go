package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"sync"
	"sync/atomic"
)

// NetRPCService is served by the net/rpc baseline.
type NetRPCService struct{}

// Echo copies args to reply.
func (NetRPCService) Echo(args []byte, reply *[]byte) error { *reply = args; return nil }

// NetRPC serves the standard library's net/rpc (gob) over TCP.
func NetRPC() (*System, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	s := rpc.NewServer()
	if err := s.Register(NetRPCService{}); err != nil {
		return nil, err
	}
	go func() {
		// Not s.Accept: it logs through the log package when the listener
		// closes.
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(c)
		}
	}()
	addr := ln.Addr().String()
	return &System{
		Name:   "net/rpc",
		Shared: true,
		Dial: func(context.Context) (Client, error) {
			c, err := rpc.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return netrpcClient{c}, nil
		},
		Close: ln.Close,
	}, nil
}

type netrpcClient struct{ c *rpc.Client }

func (n netrpcClient) Echo(_ context.Context, b []byte) ([]byte, error) {
	var reply []byte
	err := n.c.Call("NetRPCService.Echo", b, &reply)
	return reply, err
}
func (n netrpcClient) Oneway(context.Context, []byte) error { return errNoOneway }
func (n netrpcClient) Close() error                         { return n.c.Close() }

// TCP serves a length-prefixed echo: 4 bytes of length, then the bytes.
// The top bit of the length marks a oneway message (no reply).
func TCP() (*System, error) {
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	var notes atomic.Int64
	var (
		wg    sync.WaitGroup // the accept loop and one per connection
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				r := bufio.NewReaderSize(c, 64<<10)
				var hdr [4]byte
				var buf []byte
				for {
					if _, err := io.ReadFull(r, hdr[:]); err != nil {
						return
					}
					n := binary.BigEndian.Uint32(hdr[:])
					oneway := n&(1<<31) != 0
					n &^= 1 << 31
					if cap(buf) < int(n) {
						buf = make([]byte, n)
					}
					buf = buf[:n]
					if _, err := io.ReadFull(r, buf); err != nil {
						return
					}
					if oneway {
						notes.Add(1)
						continue
					}
					bufs := net.Buffers{hdr[:], buf}
					if _, err := bufs.WriteTo(c); err != nil {
						return
					}
				}
			}()
		}
	}()
	addr := ln.Addr().String()
	return &System{
		Name: "tcp",
		Dial: func(context.Context) (Client, error) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return &tcpClient{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
		},
		Executed: notes.Load,
		Close: func() error {
			err := ln.Close()
			mu.Lock()
			for c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
			return err
		},
	}, nil
}

type tcpClient struct {
	mu sync.Mutex
	c  net.Conn
	r  *bufio.Reader
}

func (t *tcpClient) write(b []byte, oneway bool) error {
	if len(b) >= 1<<31 {
		return fmt.Errorf("message too large")
	}
	var hdr [4]byte
	n := uint32(len(b))
	if oneway {
		n |= 1 << 31
	}
	binary.BigEndian.PutUint32(hdr[:], n)
	bufs := net.Buffers{hdr[:], b}
	_, err := bufs.WriteTo(t.c)
	return err
}

func (t *tcpClient) Echo(_ context.Context, b []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.write(b, false); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(t.r, hdr[:]); err != nil {
		return nil, err
	}
	out := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err := io.ReadFull(t.r, out)
	return out, err
}

func (t *tcpClient) Oneway(_ context.Context, b []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.write(b, true)
}

func (t *tcpClient) Close() error { return t.c.Close() }
