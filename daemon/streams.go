package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"iter"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// Stream defaults; see Config.
const (
	DefaultMaxStreams   = 64
	DefaultStreamLinger = 30 * time.Second
	DefaultStreamChunk  = 512
	streamChunkBytes    = 1 << 20
)

// stream is an open stream result: an iter.Seq being pulled or a channel
// being received from, in chunks, by StreamNext calls.
type stream struct {
	id   string
	kind streamKind
	ch   reflect.Value // chanStream

	mu     sync.Mutex // serialises fetches (iter.Pull's next is not concurrent-safe)
	next   func() (any, bool, error)
	stop   func()
	closed bool // guarded by mu

	end func() // releases the method's context once all its streams closed

	owner uint64      // connection id; guarded by Daemon.mu
	timer *time.Timer // linger after the owner disconnected; guarded by Daemon.mu
}

// prepareResults turns stream results into open streams (their first
// chunk travels in the reply) and registered objects into references.
// With lazy, a stream's chunk is empty: nothing is read before the first
// fetch.
func (d *Daemon) prepareResults(ctx context.Context, cs *connState, m *method, out []reflect.Value, endStreams context.CancelFunc, lazy bool) error {
	if m.streams {
		left := new(atomic.Int32)
		for _, k := range m.outKinds {
			if k != notStream {
				left.Add(1)
			}
		}
		end := func() {
			if left.Add(-1) == 0 {
				endStreams()
			}
		}
		for i, k := range m.outKinds {
			if k == notStream {
				continue
			}
			chunk, err := d.openStream(ctx, cs, k, out[i], end, lazy)
			if err != nil {
				// Close what was opened and release the rest.
				for j := i + 1; j < len(out); j++ {
					if m.outKinds[j] != notStream {
						end()
					}
				}
				for j := range i {
					if c, ok := out[j].Interface().(*wire.Chunk); ok && !c.Done {
						d.closeStream(c.ID)
					}
				}
				return err
			}
			out[i] = reflect.ValueOf(chunk)
		}
	}
	d.mu.RLock()
	refs := len(d.byInst) > 0
	d.mu.RUnlock()
	if refs {
		for i, v := range out {
			if i < len(m.outKinds) && m.outKinds[i] != notStream {
				continue
			}
			if r, ok := d.refOf(v); ok {
				out[i] = reflect.ValueOf(r)
			}
		}
	}
	return nil
}

func newStreamID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// openStream registers the stream v for connection cs and returns its
// first chunk (an empty one with lazy).
func (d *Daemon) openStream(ctx context.Context, cs *connState, kind streamKind, v reflect.Value, end func(), lazy bool) (*wire.Chunk, error) {
	s := &stream{id: newStreamID(), kind: kind, end: sync.OnceFunc(end)}
	if v.IsNil() { // a nil iterator or channel is an empty stream
		end()
		c := wire.NewChunk(s.id)
		c.Done = true
		return c, nil
	}
	switch kind {
	case seqStream:
		yieldType := v.Type().In(0)
		seq := func(yield func(any) bool) {
			y := reflect.MakeFunc(yieldType, func(in []reflect.Value) []reflect.Value {
				return []reflect.Value{reflect.ValueOf(yield(in[0].Interface()))}
			})
			v.Call([]reflect.Value{y})
		}
		next, stop := iter.Pull(iter.Seq[any](seq))
		s.next = func() (item any, ok bool, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = &gopyro.Error{Code: gopyro.CodeRemote, Op: "stream", RemoteType: "panic", Message: fmt.Sprint(r)}
				}
			}()
			item, ok = next()
			return item, ok, nil
		}
		s.stop = stop
	case chanStream:
		s.ch = v
	}
	if cs == nil {
		s.shutdown()
		return nil, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "stream", Message: "a stream needs a connection"}
	}
	d.smu.Lock()
	if d.owned[cs.id] >= d.cfg.MaxStreams {
		d.smu.Unlock()
		s.shutdown()
		return nil, &gopyro.Error{Code: gopyro.CodeBusy, Op: "stream",
			Message: fmt.Sprintf("this connection has %d open streams (the limit); close some first", d.cfg.MaxStreams)}
	}
	d.owned[cs.id]++
	s.owner = cs.id
	d.streams[s.id] = s
	if cs.ctx.Err() != nil {
		// The connection closed meanwhile, and connClosed may have
		// orphaned its streams before this one existed: it lingers too.
		d.lingerLocked(s)
	}
	d.smu.Unlock()
	if lazy {
		return wire.NewChunk(s.id), nil
	}
	return d.fill(ctx, s)
}

// fill reads the stream's next chunk. The chunk is Done when the stream
// ended; the stream is then closed.
func (d *Daemon) fill(ctx context.Context, s *stream) (*wire.Chunk, error) {
	s.mu.Lock()
	c := wire.NewChunk(s.id)
	if s.closed {
		s.mu.Unlock()
		c.Done = true
		return c, nil
	}
	var err error
	for c.Len() < d.cfg.StreamChunk && c.Size() < streamChunkBytes {
		item, ok, ierr := s.receive(ctx, c.Len() == 0)
		if ierr != nil {
			err = ierr
			break
		}
		if !ok {
			c.Done = true
			break
		}
		if item == nil { // a channel with nothing ready: send what we have
			break
		}
		if err = c.Add(item.v); err != nil {
			err = &gopyro.Error{Code: gopyro.CodeProtocol, Op: "stream", Message: err.Error()}
			break
		}
	}
	s.mu.Unlock()
	if err != nil || c.Done {
		d.closeStream(s.id)
	}
	return c, err
}

// boxed holds one received item (it may itself be nil).
type boxed struct{ v any }

// receive returns the next item; ok is false at the end of the stream. For
// a channel it waits only for the first item of a chunk (block), and
// returns a nil *boxed when nothing else is ready.
func (s *stream) receive(ctx context.Context, block bool) (*boxed, bool, error) {
	if s.kind == seqStream {
		v, ok, err := s.next()
		return &boxed{v}, ok, err
	}
	if !block {
		v, ok := s.ch.TryRecv()
		switch {
		case !v.IsValid(): // nothing ready
			return nil, true, nil
		case !ok: // closed
			return nil, false, nil
		}
		return &boxed{v.Interface()}, true, nil
	}
	chosen, v, ok := reflect.Select([]reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: s.ch},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
	})
	if chosen == 1 {
		return nil, false, &gopyro.Error{Code: gopyro.CodeTimeout, Op: "stream", Message: "no stream item before the deadline", Err: ctx.Err()}
	}
	if !ok {
		return nil, false, nil
	}
	return &boxed{v.Interface()}, true, nil
}

// shutdown stops the producer: the method's context is cancelled and an
// iterator's yield returns false.
func (s *stream) shutdown() {
	if s.end != nil {
		s.end()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.stop != nil {
		s.stop()
	}
}

// closeStream forgets stream id and stops its producer.
func (d *Daemon) closeStream(id string) bool {
	d.smu.Lock()
	s, ok := d.streams[id]
	if ok {
		delete(d.streams, id)
		if s.timer != nil {
			s.timer.Stop()
		}
		d.disownLocked(s.owner)
	}
	d.smu.Unlock()
	if ok {
		s.shutdown()
	}
	return ok
}

// disownLocked counts a stream of connection id out. Called with d.smu
// held.
func (d *Daemon) disownLocked(id uint64) {
	if d.owned[id] <= 1 {
		delete(d.owned, id)
		return
	}
	d.owned[id]--
}

// streamNext serves the built-in StreamNext call.
func (d *Daemon) streamNext(ctx context.Context, id string) (*wire.Chunk, error) {
	info, _ := CallInfoFrom(ctx)
	s, ok := d.fetchStream(id, info.ConnID)
	if !ok {
		return nil, &gopyro.Error{Code: gopyro.CodeNotFound, Op: "stream next", Message: "no open stream " + id + " (it ended, was closed, or lingered too long)"}
	}
	return d.fill(ctx, s)
}

// fetchStream returns open stream id for a fetch on connection connID:
// a stream whose client reconnected moves to its new connection.
func (d *Daemon) fetchStream(id string, connID uint64) (*stream, bool) {
	d.smu.Lock()
	defer d.smu.Unlock()
	s, ok := d.streams[id]
	if ok && s.owner != connID {
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
		d.disownLocked(s.owner)
		d.owned[connID]++
		s.owner = connID
	}
	return s, ok
}

// nextItem reads one item of stream s; ok is false at its end. The stream
// is closed at its end and on an error.
func (d *Daemon) nextItem(ctx context.Context, s *stream) (item any, ok bool, err error) {
	s.mu.Lock()
	var b *boxed
	if !s.closed {
		b, ok, err = s.receive(ctx, true)
	}
	s.mu.Unlock()
	if err != nil || !ok {
		d.closeStream(s.id)
		return nil, false, err
	}
	return b.v, true, nil
}

// orphanStreams starts the linger timer of the streams of a closed
// connection (whose context is already cancelled).
func (d *Daemon) orphanStreams(connID uint64) {
	d.smu.Lock()
	defer d.smu.Unlock()
	for _, s := range d.streams {
		if s.owner == connID {
			d.lingerLocked(s)
		}
	}
}

// lingerLocked starts s's linger timer, unless it runs. Called with d.smu
// held.
func (d *Daemon) lingerLocked(s *stream) {
	if s.timer == nil {
		id := s.id
		s.timer = time.AfterFunc(d.cfg.StreamLinger, func() { d.closeStream(id) })
	}
}

// closeAllStreams stops every stream (the daemon is closing).
func (d *Daemon) closeAllStreams() {
	d.smu.Lock()
	ids := make([]string, 0, len(d.streams))
	for id := range d.streams {
		ids = append(ids, id)
	}
	d.smu.Unlock()
	for _, id := range ids {
		d.closeStream(id)
	}
}

// OpenStreams returns the number of open streams.
func (d *Daemon) OpenStreams() int {
	d.smu.Lock()
	defer d.smu.Unlock()
	return len(d.streams)
}
