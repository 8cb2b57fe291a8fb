package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// Ready is closed once Serve has its listener and URIs can be made.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Addr returns the listener's address, or nil before Serve.
func (d *Daemon) Addr() net.Addr {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.ln == nil {
		return nil
	}
	return d.ln.Addr()
}

// maxAcceptDelay bounds the pause after a temporary accept error (too many
// open files, for example), as net/http does.
const maxAcceptDelay = time.Second

// Serve accepts connections on ln and serves calls on them until ctx is
// done, [Daemon.Shutdown] or [Daemon.Close]; then it returns nil. A daemon
// serves one listener once. The caller owns ln; Serve closes it when it
// stops.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	d.mu.Lock()
	switch {
	case d.closed || d.draining.Load():
		d.mu.Unlock()
		return d.fail("serve", gopyro.CodeClosed, "daemon is closed")
	case d.serving:
		d.mu.Unlock()
		return d.fail("serve", gopyro.CodeInvalid, "daemon is already serving")
	}
	d.serving = true
	d.ln = ln
	if !d.loc.known() {
		if loc, err := listenerLocation(ln.Addr()); err == nil {
			d.loc = loc
		}
	}
	close(d.ready)
	d.mu.Unlock()

	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && d.cfg.TLS == nil && d.cfg.Token == "" {
		d.cfg.Logger.Warn("daemon: serving on a non-loopback address without TLS or a token: anyone who can reach it can call every registered object",
			"addr", ln.Addr().String())
	}
	stop := context.AfterFunc(ctx, func() { _ = d.Close() })
	defer stop()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if d.draining.Load() {
				return nil
			}
			if isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), maxAcceptDelay)
				d.acceptLog.warn(d.cfg.Logger, "daemon: accept failed; retrying", "err", err, "in", delay)
				select {
				case <-time.After(delay):
					continue
				case <-d.ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("daemon: serve: %w", err)
		}
		delay = 0
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		_, _ = d.serveConn(c)
	}
}

// isTemporary reports an accept error worth retrying (a full file table,
// for example).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// ServeConn serves calls on one connection until it closes, ctx is done or
// the daemon is closed, then returns nil (as net/rpc's ServeConn; tests and
// fuzzers use it with net.Pipe). The connection counts against
// [Config.MaxConns]; TLS, when configured, is spoken on it. ServeConn does
// not make the daemon's URIs known: set [Config.Advertise] to register
// objects on a daemon that only serves connections given to it.
func (d *Daemon) ServeConn(ctx context.Context, c net.Conn) error {
	cs, err := d.serveConn(c)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = cs.conn.Close() })
	defer stop()
	<-cs.done
	return nil
}

// serveConn admits c and hands it to the transport.
func (d *Daemon) serveConn(c net.Conn) (*connState, error) {
	d.connMu.Lock()
	var err *gopyro.Error
	switch {
	case d.draining.Load():
		err = d.fail("serve", gopyro.CodeClosed, "daemon is closed")
	case len(d.conns) >= d.cfg.MaxConns:
		err = d.fail("serve", gopyro.CodeBusy, "daemon at its connection limit (%d)", d.cfg.MaxConns)
		d.refuseLog.warn(d.cfg.Logger, "daemon: connection limit reached; refusing new connection",
			"limit", d.cfg.MaxConns, "remote", c.RemoteAddr().String())
	}
	if err != nil {
		busy := err.Code == gopyro.CodeBusy
		if busy {
			d.refusing.Add(1) // under connMu: Close waits only after it took connMu
		}
		d.connMu.Unlock()
		if busy {
			go func() {
				defer d.refusing.Done()
				d.refuse(c, wire.BusyPrefix+err.Message)
			}()
		} else {
			_ = c.Close()
		}
		return nil, err
	}
	if d.cfg.TLS != nil {
		c = tls.Server(c, d.cfg.TLS)
	}
	cs := &connState{id: d.nextConn.Add(1), conn: c, done: make(chan struct{})}
	cs.ctx, cs.cancel = context.WithCancel(d.ctx)
	d.conns[cs] = struct{}{}
	d.connMu.Unlock()
	go d.sniff(cs, c) // gopyro's protocol or Python Pyro's: see pyro.go
	return cs, nil
}

// refuseTimeout bounds how long a refused connection is kept to deliver
// its refusal.
const refuseTimeout = time.Second

// refuse tells the peer of c why it is refused, in a frame it can read
// (over TLS when the daemon speaks TLS), then closes c. It keeps reading
// (and discarding) for a moment after, so that the peer's first request
// does not meet a reset before the refusal is read. Close cuts it short.
func (d *Daemon) refuse(c net.Conn, msg string) {
	defer c.Close()
	stop := context.AfterFunc(d.ctx, func() { _ = c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(refuseTimeout))
	if d.cfg.TLS != nil {
		c = tls.Server(c, d.cfg.TLS)
	}
	if _, err := c.Write(wire.RefusalFrame(msg)); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(c, refuseDrainLimit))
}

// refuseDrainLimit bounds what is read from a refused connection.
const refuseDrainLimit = 1 << 20

// connClosed forgets a closed connection: its calls' contexts are
// cancelled, its streams start to linger and its session instances are
// closed.
func (d *Daemon) connClosed(cs *connState) {
	d.connMu.Lock()
	if _, ok := d.conns[cs]; !ok {
		d.connMu.Unlock()
		return
	}
	delete(d.conns, cs)
	instances := cs.instances
	cs.instances, cs.closed = nil, true
	d.connMu.Unlock()
	cs.cancel()
	d.orphanStreams(cs.id) // after cancel: see openStream
	for _, inst := range instances {
		closeInstance(inst)
	}
	close(cs.done)
}

// drain marks the daemon draining; drained closes once no call runs and
// no reply is being written.
func (d *Daemon) drain() {
	d.draining.Store(true)
	d.maybeDrained()
}

func (d *Daemon) maybeDrained() {
	if d.active.Load() == 0 && d.holds.Load() == 0 && d.draining.Load() {
		d.drainOnce.Do(func() { close(d.drained) })
	}
}

// hold keeps Shutdown from closing the connections until release: a
// request is being served, and its reply must go out before they close.
func (d *Daemon) hold() { d.holds.Add(1) }

func (d *Daemon) release() {
	if d.holds.Add(-1) == 0 {
		d.maybeDrained()
	}
}

// Shutdown stops accepting connections and new calls, waits until the
// calls in flight have finished (or ctx is done), then closes every
// connection. If the calls did not finish in time it closes the daemon
// anyway and returns a *gopyro.Error with CodeTimeout (or CodeCanceled)
// that wraps ctx's error.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.drain()
	d.mu.Lock()
	ln := d.ln
	d.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	var err error
	select {
	case <-d.drained:
	case <-ctx.Done():
		code := gopyro.CodeTimeout
		if errors.Is(ctx.Err(), context.Canceled) {
			code = gopyro.CodeCanceled
		}
		err = &gopyro.Error{Code: code, Op: "shutdown", Err: ctx.Err(),
			Message: "calls were still running; they were cancelled and their connections closed"}
	}
	return errors.Join(err, d.Close())
}

// Close stops the daemon now: it closes the listener and every connection
// and cancels the context of every call still running.
func (d *Daemon) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.drain() // before the connections are listed: serveConn admits none after
	ln := d.ln
	d.mu.Unlock()
	d.connMu.Lock()
	conns := make([]net.Conn, 0, len(d.conns))
	for cs := range d.conns {
		conns = append(conns, cs.conn)
	}
	d.connMu.Unlock()
	d.cancel()
	d.closeAllStreams()
	var err error
	if ln != nil {
		err = ignoreClosed(ln.Close())
	}
	for _, c := range conns {
		_ = c.Close()
	}
	d.refusing.Wait() // d.cancel above ends them
	return errors.Join(err, d.tr.Close())
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// begin counts a call in, for the in-flight limit and for draining.
func (d *Daemon) begin() beginResult {
	if d.draining.Load() {
		return errDraining
	}
	if d.active.Add(1) > int64(d.cfg.MaxInFlight) {
		d.end()
		return errBusy
	}
	if d.draining.Load() { // Shutdown began meanwhile: it may have seen no call
		d.end()
		return errDraining
	}
	return begun
}

type beginResult uint8

const (
	begun beginResult = iota
	errDraining
	errBusy
)

// end counts a call out.
func (d *Daemon) end() {
	if d.active.Add(-1) == 0 {
		d.maybeDrained()
	}
	if d.waiters.Load() > 0 {
		d.slotMu.Lock()
		close(d.slotFreed)
		d.slotFreed = make(chan struct{})
		d.slotMu.Unlock()
	}
}

// waitSlot waits until a call can begin, or the daemon stops.
func (d *Daemon) waitSlot() beginResult {
	d.waiters.Add(1)
	defer d.waiters.Add(-1)
	for {
		d.slotMu.Lock()
		freed := d.slotFreed // taken before begin: an end after it closes this one
		d.slotMu.Unlock()
		if r := d.begin(); r != errBusy {
			return r
		}
		select {
		case <-freed:
		case <-d.ctx.Done():
			return errDraining
		}
	}
}

// Stats is a snapshot of a daemon's load.
type Stats struct {
	Conns         int    // client connections open
	InFlight      int    // calls running
	BytesInFlight int64  // bytes charged to the memory budget (Config.MaxBytesInFlight)
	OnewayDropped uint64 // oneway calls dropped at the in-flight limit (Config.DropOneway)
	OnewayWaiting int    // oneway calls waiting for a slot
	StreamsOpen   int    // open streams
}

// Stats returns a snapshot of the daemon's load.
func (d *Daemon) Stats() Stats {
	d.connMu.Lock()
	conns := len(d.conns)
	d.connMu.Unlock()
	streams := d.OpenStreams()
	return Stats{
		Conns:         conns,
		InFlight:      int(max(d.active.Load(), 0)),
		BytesInFlight: d.budget.InUse(),
		OnewayDropped: d.dropped.Load(),
		OnewayWaiting: int(d.waiters.Load()),
		StreamsOpen:   streams,
	}
}
