package proxy_test

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/proxy"
)

// TestCloseDuringDial: Close does not wait for a dial that hangs (a TLS
// handshake the peer never answers); it cancels it, and the call fails as
// closed (issue 11, item 5).
func TestCloseDuringDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // never answers the handshake
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case c := <-accepted:
			c.Close()
		default:
		}
	})
	u := gopyro.NewPyroURI("x", "127.0.0.1", ln.Addr().(*net.TCPAddr).Port)
	p, err := proxy.NewURI(u, proxy.WithTLS(&tls.Config{InsecureSkipVerify: true}), proxy.WithConnectTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := p.Call(t.Context(), "M")
		errc <- err
	}()
	c := <-accepted
	accepted <- c // for the cleanup
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a dial in flight")
	}
	select {
	case err := <-errc:
		if !errors.Is(err, gopyro.ErrClosed) {
			t.Fatalf("the call whose dial Close cancelled: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call went on dialling after Close")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close and the call took %v", took)
	}
}
