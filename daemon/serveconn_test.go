package daemon_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/wire"
)

// TestServeConnPipe serves one in-memory connection: no listener, no TCP.
func TestServeConnPipe(t *testing.T) {
	d, err := daemon.New(daemon.WithAdvertise("pipe.invalid:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Register(&Calc{}, daemon.WithID("calc")); err != nil {
		t.Fatal(err)
	}
	server, client := net.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- d.ServeConn(ctx, server) }()

	cl := wire.NewClient(client, 1<<20)
	defer cl.Close()
	args, _ := wire.EncodeArray(2, 3)
	rep, err := cl.Send(t.Context(), wire.Call{
		Meta:    map[string]string{wire.MetaObject: "calc", wire.MetaMethod: "Add"},
		Payload: [][]byte{args},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Meta[wire.MetaError] == "1" {
		t.Fatal(wire.DecodeError(rep.Payload))
	}
	dec, err := wire.NewDecoder(rep.Payload)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dec.NextInterface()
	dec.Release()
	if err != nil || v != int64(5) {
		t.Fatalf("Add(2, 3) over a pipe = %v, %v", v, err)
	}

	// Cancelling ctx ends the connection and ServeConn returns nil.
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
	if _, err := cl.Send(t.Context(), wire.Call{Meta: map[string]string{wire.MetaObject: "calc", wire.MetaMethod: "Add"}, Payload: [][]byte{args}}); err == nil {
		t.Fatal("call on a connection whose ServeConn ended succeeded")
	}
}

// TestServeConnLimits: ServeConn counts against MaxConns, and a closed
// daemon refuses connections with a typed error.
func TestServeConnLimits(t *testing.T) {
	d, err := daemon.New(daemon.WithMaxConns(1))
	if err != nil {
		t.Fatal(err)
	}
	a, apeer := net.Pipe()
	go d.ServeConn(t.Context(), a)
	cl := wire.NewClient(apeer, 1<<20)
	defer cl.Close()
	// A round trip proves the first connection was admitted.
	if _, err := cl.Send(t.Context(), wire.Call{Meta: map[string]string{wire.MetaObject: gopyro.DaemonID, wire.MetaMethod: "Ping"}, Payload: [][]byte{{0x90}}}); err != nil {
		t.Fatal(err)
	}
	b, bpeer := net.Pipe()
	defer bpeer.Close()
	if err := d.ServeConn(t.Context(), b); !errors.Is(err, gopyro.ErrBusy) {
		t.Fatalf("over the limit: %v", err)
	}
	d.Close()
	c, _ := net.Pipe()
	if err := d.ServeConn(t.Context(), c); !errors.Is(err, gopyro.ErrClosed) {
		t.Fatalf("ServeConn after Close: %v", err)
	}
}

// TestProtocolNamesServed: every built-in method the wire package names
// (and the proxy calls) is served by the daemon object.
func TestProtocolNamesServed(t *testing.T) {
	d, err := daemon.New()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	md, err := d.Metadata(gopyro.DaemonID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{wire.MethodPing, wire.MethodRegistered, wire.MethodGetMetadata, wire.MethodStreamNext, wire.MethodStreamClose} {
		if !slices.Contains(md.Methods, m) {
			t.Errorf("the daemon object does not serve %q (it serves %v)", m, md.Methods)
		}
	}
}
