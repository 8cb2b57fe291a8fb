package classic

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/vmihailenco/msgpack/v5"
)

// Output buffering: a pipe read takes at most readChunk bytes; a session
// holds at most maxOutbox bytes its client has not fetched (then the
// worker's writes block: back-pressure); one Output call returns at most
// maxFetch bytes.
const (
	readChunk = 64 << 10
	maxOutbox = 1 << 20
	maxFetch  = 1 << 20
)

// File transfer limits.
const (
	maxChunk   = 4 << 20 // the most bytes one PutChunk or GetChunk moves
	maxUploads = 8       // uploads open at once per session
)

// deathGrace is how long the server waits for a worker's answer past a
// call's deadline before killing it.
const deathGrace = 2 * time.Second

// Session is the remote object of a classic server: one per client
// connection, holding one worker process once opened. Clients use it
// through [Client]; its methods are the wire API.
type Session struct {
	srv *Server

	mu       sync.Mutex
	id       string
	proc     *process
	lost     *gopyro.Error // why the session ended; nil while it lives
	gone     chan struct{} // closed when the session ends
	idle     *time.Timer
	calls    int           // calls in progress (an idle session has none)
	redirect [2]bool       // stdout, stderr go to the client
	taken    [2]int64      // offset past the last byte a pump routed
	routed   [2]int64      // offset past the last byte in the outbox or written to the console
	outbox   []Chunk       // output waiting for the client
	outBytes int           //
	changed  chan struct{} // closed (and replaced) when outbox changes
	uploads  map[string]*upload
	stderr   tail
	pumps    sync.WaitGroup
}

type upload struct {
	f    *os.File
	path string
}

func (s *Server) newSession() *Session {
	return &Session{srv: s, gone: make(chan struct{}), changed: make(chan struct{}), stderr: tail{max: 4096}}
}

// Open starts the session: it takes a worker and returns the session's
// id, which every later call sends. Opening twice returns the same id.
func (ss *Session) Open(ctx context.Context) (Info, error) {
	ss.mu.Lock()
	if ss.proc != nil || ss.lost != nil {
		info, lost := Info{ID: ss.id}, ss.lost
		if ss.proc != nil {
			info.PID = ss.proc.pid
		}
		ss.mu.Unlock()
		if lost != nil {
			return Info{}, lost
		}
		return info, nil
	}
	ss.mu.Unlock()
	srv := ss.srv
	if err := srv.reserve(); err != nil {
		return Info{}, err
	}
	p, err := srv.worker(ctx)
	if err != nil {
		srv.mu.Lock()
		srv.open--
		srv.mu.Unlock()
		return Info{}, &gopyro.Error{Code: gopyro.CodeUnknown, Op: "classic open", Message: "cannot start a worker", Err: err}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	ss.mu.Lock()
	if ss.proc != nil || ss.lost != nil { // a concurrent Open won, or the connection closed
		ss.mu.Unlock()
		p.kill()
		srv.mu.Lock()
		srv.open--
		srv.mu.Unlock()
		return ss.Open(ctx)
	}
	ss.id, ss.proc = hex.EncodeToString(b[:]), p
	if srv.cfg.IdleTimeout > 0 {
		ss.idle = time.AfterFunc(srv.cfg.IdleTimeout, ss.idleTimeout)
	}
	ss.mu.Unlock()
	srv.mu.Lock()
	srv.sessions[ss] = struct{}{}
	srv.mu.Unlock()
	ss.pumps.Add(2)
	go ss.pump(0)
	go ss.pump(1)
	go ss.watch(p)
	return Info{ID: ss.id, PID: p.pid}, nil
}

// Execute runs code in the session: statements, declarations (which
// persist), imports. Standard packages used by name are imported for it.
//
// timeout (nanoseconds; 0: none) is the caller's own deadline: the
// caller waits a little longer for the answer, so that it learns what
// happened at the deadline (stopped, or the session lost).
func (ss *Session) Execute(ctx context.Context, sid, code string, timeout int64) (Marks, error) {
	_, marks, err := ss.request(ctx, sid, timeout, &wRequest{Op: opExec, Src: code})
	return marks, err
}

// Eval evaluates an expression and returns its value (msgpack).
func (ss *Session) Eval(ctx context.Context, sid, expr string, timeout int64) (msgpack.RawMessage, Marks, error) {
	return ss.request(ctx, sid, timeout, &wRequest{Op: opEval, Src: expr})
}

// Call calls the function the session knows as name (a declared func or
// a package function such as os.Getwd) with args, converted to its
// parameter types, and returns its result (msgpack; several results
// come as an array; a non-nil error result fails the call).
func (ss *Session) Call(ctx context.Context, sid, name string, args msgpack.RawMessage, timeout int64) (msgpack.RawMessage, Marks, error) {
	return ss.request(ctx, sid, timeout, &wRequest{Op: opCall, Src: name, Args: args})
}

func (ss *Session) request(ctx context.Context, sid string, timeout int64, req *wRequest) (msgpack.RawMessage, Marks, error) {
	p, err := ss.enter(sid)
	if err != nil {
		return nil, Marks{}, err
	}
	defer ss.leave()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout))
		defer cancel()
	}
	if t := ss.srv.cfg.CallTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	rep, err := p.do(ctx, req, deathGrace)
	marks := Marks{Stdout: p.out[0].mark(), Stderr: p.out[1].mark()}
	if err == nil {
		// The output of the call is on the console or in the outbox
		// before the call returns, in order with what the client prints.
		ss.waitRouted(ctx, marks)
	}
	switch {
	case err != nil:
		reason := ""
		if ctx.Err() != nil {
			reason = "the code did not stop at its deadline, so its worker was killed"
		}
		return nil, marks, ss.die(p, reason)
	case rep.Lost != "":
		return nil, marks, ss.die(p, rep.Lost+", so its worker was killed")
	case rep.Err != nil:
		return nil, marks, failureError(rep.Err)
	}
	return rep.Value, marks, nil
}

// Redirect sends the session's stdout (fd 1) or stderr (fd 2) to the
// client (on) or back to the server's console. It returns the offset
// from which the client gets that stream's output.
func (ss *Session) Redirect(sid string, fd int, on bool) (int64, error) {
	if fd != 1 && fd != 2 {
		return 0, &gopyro.Error{Code: gopyro.CodeArgument, Op: "redirect", Message: fmt.Sprintf("fd %d: only 1 (stdout) and 2 (stderr) can be redirected", fd)}
	}
	if _, err := ss.enter(sid); err != nil {
		return 0, err
	}
	defer ss.leave()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.redirect[fd-1] = on
	if !on {
		ss.broadcast() // a pump waiting for room routes to the console now
	}
	return ss.taken[fd-1], nil
}

// Output waits for output redirected to the client and returns it, up to
// about 1 MiB; nothing if ctx ends first. It fails once the session is
// lost and its output is all fetched.
func (ss *Session) Output(ctx context.Context, sid string) ([]Chunk, error) {
	ss.mu.Lock()
	if ss.id == "" || sid != ss.id {
		ss.mu.Unlock()
		_, err := ss.enter(sid)
		return nil, err
	}
	ss.mu.Unlock()
	for {
		ss.mu.Lock()
		if len(ss.outbox) > 0 {
			n, size := 0, 0
			for n < len(ss.outbox) && (n == 0 || size+len(ss.outbox[n].Data) <= maxFetch) {
				size += len(ss.outbox[n].Data)
				n++
			}
			out := ss.outbox[:n:n]
			ss.outbox = ss.outbox[n:]
			ss.outBytes -= size
			ss.broadcast()
			ss.mu.Unlock()
			return out, nil
		}
		lost, changed := ss.lost, ss.changed
		ss.mu.Unlock()
		if lost != nil {
			ss.pumps.Wait() // the last output first
			ss.mu.Lock()
			more := len(ss.outbox) > 0
			ss.mu.Unlock()
			if more {
				continue
			}
			return nil, lost
		}
		select {
		case <-changed:
		case <-ss.gone:
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// PutBegin starts an upload to path: the data goes to a temporary file
// beside it, renamed to path by PutEnd. It returns the upload's token.
func (ss *Session) PutBegin(sid, path string) (string, error) {
	if _, err := ss.enter(sid); err != nil {
		return "", err
	}
	defer ss.leave()
	ss.mu.Lock()
	n := len(ss.uploads)
	ss.mu.Unlock()
	if n >= maxUploads {
		return "", &gopyro.Error{Code: gopyro.CodeBusy, Op: "upload", Message: fmt.Sprintf("%d uploads are open in this session", n)}
	}
	if path == "" {
		return "", &gopyro.Error{Code: gopyro.CodeArgument, Op: "upload", Message: "empty path"}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return "", &gopyro.Error{Code: gopyro.CodeArgument, Op: "upload " + path, Message: "is a directory"}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".upload-*")
	if err != nil {
		return "", &gopyro.Error{Code: gopyro.CodeArgument, Op: "upload " + path, Message: err.Error()}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	ss.mu.Lock()
	if ss.uploads == nil {
		ss.uploads = map[string]*upload{}
	}
	ss.uploads[tok] = &upload{f: f, path: path}
	ss.mu.Unlock()
	return tok, nil
}

// PutChunk writes data at off in the upload token.
func (ss *Session) PutChunk(sid, token string, off int64, data []byte) error {
	if _, err := ss.enter(sid); err != nil {
		return err
	}
	defer ss.leave()
	ss.mu.Lock()
	u := ss.uploads[token]
	ss.mu.Unlock()
	if u == nil {
		return &gopyro.Error{Code: gopyro.CodeNotFound, Op: "upload", Message: "no open upload " + token}
	}
	if off < 0 {
		return &gopyro.Error{Code: gopyro.CodeArgument, Op: "upload", Message: "negative offset"}
	}
	if _, err := u.f.WriteAt(data, off); err != nil {
		ss.abort(token)
		return &gopyro.Error{Code: gopyro.CodeUnknown, Op: "upload " + u.path, Message: err.Error()}
	}
	return nil
}

// PutEnd finishes the upload token: commit renames the data into place;
// otherwise it is removed.
func (ss *Session) PutEnd(sid, token string, commit bool) error {
	if _, err := ss.enter(sid); err != nil {
		return err
	}
	defer ss.leave()
	ss.mu.Lock()
	u := ss.uploads[token]
	delete(ss.uploads, token)
	ss.mu.Unlock()
	if u == nil {
		return &gopyro.Error{Code: gopyro.CodeNotFound, Op: "upload", Message: "no open upload " + token}
	}
	if !commit {
		u.f.Close()
		os.Remove(u.f.Name())
		return nil
	}
	err := u.f.Close()
	if err == nil {
		err = os.Rename(u.f.Name(), u.path)
	}
	if err != nil {
		os.Remove(u.f.Name())
		return &gopyro.Error{Code: gopyro.CodeUnknown, Op: "upload " + u.path, Message: err.Error()}
	}
	return nil
}

func (ss *Session) abort(token string) {
	ss.mu.Lock()
	u := ss.uploads[token]
	delete(ss.uploads, token)
	ss.mu.Unlock()
	if u != nil {
		u.f.Close()
		os.Remove(u.f.Name())
	}
}

// Stat returns the size of the regular file at path, for a download.
func (ss *Session) Stat(sid, path string) (int64, error) {
	if _, err := ss.enter(sid); err != nil {
		return 0, err
	}
	defer ss.leave()
	fi, err := os.Stat(path)
	if err != nil {
		return 0, &gopyro.Error{Code: gopyro.CodeNotFound, Op: "download " + path, Message: err.Error()}
	}
	if !fi.Mode().IsRegular() {
		return 0, &gopyro.Error{Code: gopyro.CodeArgument, Op: "download " + path, Message: "not a regular file"}
	}
	return fi.Size(), nil
}

// GetChunk reads up to n bytes (at most 4 MiB) of path at off; fewer at
// the end of the file.
func (ss *Session) GetChunk(sid, path string, off int64, n int) ([]byte, error) {
	if _, err := ss.enter(sid); err != nil {
		return nil, err
	}
	defer ss.leave()
	if n <= 0 || n > maxChunk || off < 0 {
		return nil, &gopyro.Error{Code: gopyro.CodeArgument, Op: "download " + path, Message: fmt.Sprintf("bad range: %d bytes at %d (at most %d per chunk)", n, off, maxChunk)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeNotFound, Op: "download " + path, Message: err.Error()}
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, &gopyro.Error{Code: gopyro.CodeUnknown, Op: "download " + path, Message: err.Error()}
	}
	return buf[:k], nil
}

// End closes the session: its worker is killed.
func (ss *Session) End(sid string) error {
	if _, err := ss.enter(sid); err != nil {
		return err
	}
	ss.end("the client closed it")
	return nil
}

// Close ends the session; the daemon calls it when the client's
// connection closes.
func (ss *Session) Close() { ss.end("the client disconnected") }

// enter checks sid and counts a call in (an idle session has none).
func (ss *Session) enter(sid string) (*process, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch {
	case ss.lost != nil && (sid == ss.id || ss.id == ""):
		return nil, ss.lost
	case ss.id == "" || sid != ss.id:
		// A reconnected proxy reaches a new, unopened session object.
		return nil, lostError("this connection does not hold session " + sid + " (the connection was lost and its worker killed)")
	}
	ss.calls++
	if ss.idle != nil {
		ss.idle.Stop()
	}
	return ss.proc, nil
}

func (ss *Session) leave() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.calls--
	if ss.calls == 0 && ss.idle != nil && ss.lost == nil {
		ss.idle.Reset(ss.srv.cfg.IdleTimeout)
	}
}

func (ss *Session) idleTimeout() {
	ss.mu.Lock()
	busy := ss.calls > 0
	ss.mu.Unlock()
	if !busy {
		ss.end(fmt.Sprintf("it was idle for %v", ss.srv.cfg.IdleTimeout))
	}
}

// die ends the session after its worker failed, with the reason given or
// the one its exit shows.
func (ss *Session) die(p *process, reason string) *gopyro.Error {
	if reason != "" {
		ss.end(reason)
	} else {
		ss.endDead(p)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.lost
}

// watch ends the session when its worker exits by itself.
func (ss *Session) watch(p *process) {
	select {
	case <-p.exited:
		ss.endDead(p)
	case <-ss.gone:
	}
}

// endDead ends the session of a worker that died, saying why.
func (ss *Session) endDead(p *process) {
	// Its last words (a panic, "out of memory") come on stderr.
	done := make(chan struct{})
	go func() { ss.pumps.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	ss.end("its worker " + p.deathReason(ss.stderr.bytes()))
}

// end ends the session once: the worker is killed, uploads are removed,
// and calls get ErrSessionLost with reason.
func (ss *Session) end(reason string) {
	ss.mu.Lock()
	if ss.lost != nil {
		ss.mu.Unlock()
		return
	}
	ss.lost = lostError(reason)
	p, uploads := ss.proc, ss.uploads
	ss.uploads = nil
	if ss.idle != nil {
		ss.idle.Stop()
	}
	close(ss.gone)
	ss.mu.Unlock()
	for _, u := range uploads {
		u.f.Close()
		os.Remove(u.f.Name())
	}
	if p == nil {
		return
	}
	p.kill()
	ss.srv.release(ss)
	go func() {
		// Pipes the worker's own children still hold would keep the
		// pumps reading: close them once the worker is gone.
		<-p.exited
		done := make(chan struct{})
		go func() { ss.pumps.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		p.out[0].f.Close()
		p.out[1].f.Close()
	}()
}

// pump moves a worker's stdout (i 0) or stderr (i 1) to the client or
// the console, until the pipe ends.
func (ss *Session) pump(i int) {
	defer ss.pumps.Done()
	pipe := ss.proc.out[i]
	console := ss.srv.cfg.Stdout
	if i == 1 {
		console = ss.srv.cfg.Stderr
	}
	buf := make([]byte, readChunk)
	for {
		n, end, err := pipe.read(buf)
		if n > 0 {
			if i == 1 {
				ss.stderr.Write(buf[:n])
			}
			if !ss.route(i, buf[:n], end) {
				_, _ = console.Write(buf[:n])
				ss.mu.Lock()
				ss.routed[i] = end
				ss.broadcast()
				ss.mu.Unlock()
			}
		}
		if err != nil {
			return
		}
	}
}

// route hands data to the client if stream i is redirected, waiting for
// room; it returns false if the data is for the console.
func (ss *Session) route(i int, data []byte, end int64) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for ss.redirect[i] && ss.outBytes >= maxOutbox && ss.lost == nil {
		changed := ss.changed
		ss.mu.Unlock()
		select {
		case <-changed:
		case <-ss.gone:
		}
		ss.mu.Lock()
	}
	ss.taken[i] = end
	if !ss.redirect[i] {
		return false
	}
	ss.routed[i] = end
	ss.outbox = append(ss.outbox, Chunk{FD: i + 1, End: end, Data: bytes.Clone(data)})
	ss.outBytes += len(data)
	ss.broadcast()
	return true
}

// waitRouted waits until the pumps have routed the output up to m (or
// the session ends, or ctx does).
func (ss *Session) waitRouted(ctx context.Context, m Marks) {
	for {
		ss.mu.Lock()
		done := ss.routed[0] >= m.Stdout && ss.routed[1] >= m.Stderr || ss.lost != nil
		changed := ss.changed
		ss.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-ss.gone:
			return
		case <-ctx.Done():
			return
		}
	}
}

// broadcast wakes everyone waiting for the outbox to change. Called with
// ss.mu held.
func (ss *Session) broadcast() {
	close(ss.changed)
	ss.changed = make(chan struct{})
}
