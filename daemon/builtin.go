package daemon

import (
	"context"
	"slices"

	"github.com/gopyro/gopyro/internal/wire"

	"github.com/gopyro/gopyro"
)

// Metadata returns the metadata of the object registered under id.
func (d *Daemon) Metadata(id string) (gopyro.ObjectMetadata, error) {
	d.mu.RLock()
	e, ok := d.objects[id]
	d.mu.RUnlock()
	if !ok {
		return gopyro.ObjectMetadata{}, d.fail("metadata", gopyro.CodeNotFound, "unknown object %q", id)
	}
	oneway := slices.Clone(e.oneway)
	slices.Sort(oneway)
	if oneway == nil {
		oneway = []string{}
	}
	return gopyro.ObjectMetadata{ID: id, Methods: e.info.names(), Oneway: oneway, Mode: e.mode.String()}, nil
}

// daemonObject is served under gopyro.DaemonID by every daemon.
type daemonObject struct{ d *Daemon }

// Ping does nothing; a successful call proves the daemon is alive.
func (o *daemonObject) Ping() error { return nil }

// Registered returns the registered object ids.
func (o *daemonObject) Registered() ([]string, error) { return o.d.Registered(), nil }

// GetMetadata returns the metadata of one object.
func (o *daemonObject) GetMetadata(id string) (gopyro.ObjectMetadata, error) { return o.d.Metadata(id) }

// StreamNext returns the next chunk of an open stream (a method result of
// type iter.Seq or channel). The proxy calls it; see proxy.Stream.
func (o *daemonObject) StreamNext(ctx context.Context, id string) (*wire.Chunk, error) {
	return o.d.streamNext(ctx, id)
}

// connKey finds the caller's connection in a built-in call's context.
type connKey struct{}

// Cancel cancels the context of the caller's call with request sequence
// number seq on the same connection (the proxy sends it, oneway, when a
// call's context is cancelled); it reports whether that call was running.
func (o *daemonObject) Cancel(ctx context.Context, seq uint64) bool {
	cs, ok := ctx.Value(connKey{}).(*connState)
	return ok && cs.cancelCall(seq)
}

// StreamClose closes an open stream early; it reports whether it was open.
func (o *daemonObject) StreamClose(id string) bool { return o.d.closeStream(id) }
