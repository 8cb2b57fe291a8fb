package classic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/proxy"
)

// transferChunk is the size of each piece of an upload or download.
const transferChunk = 1 << 20

// closeTimeout bounds the End call Close sends.
const closeTimeout = 5 * time.Second

// Client is a classic session: remote execution of Go source in a worker
// process of a classic server. It is safe for concurrent use, though the
// session runs one piece of code at a time.
type Client struct {
	p    *proxy.Proxy
	info Info

	pollCtx    context.Context
	stopPoll   context.CancelFunc
	pollDone   chan struct{}
	pollOnce   sync.Once
	mu         sync.Mutex
	w          [2]io.Writer  // where stdout and stderr go; nil: the server's console
	last       [2]io.Writer  // the writer of output routed before a redirect ended
	delivered  [2]int64      // offsets written to the writers
	progress   chan struct{} // closed (and replaced) when delivered moves
	pollFailed error
	polling    bool
}

// Connect opens a session on the classic server at addr ("host",
// "host:port", "./u:PATH" for a unix socket, or "", meaning 127.0.0.1;
// the port defaults to 18812).
// opts configure the connection: proxy.WithToken, proxy.WithTLS,
// proxy.WithTimeout (a bound for calls whose context has none),
// proxy.WithConnectTimeout.
func Connect(ctx context.Context, addr string, opts ...proxy.Option) (*Client, error) {
	var u gopyro.URI
	if path, ok := strings.CutPrefix(addr, "./u:"); ok && path != "" {
		u = gopyro.URI{Scheme: gopyro.SchemePyro, Object: ObjectID, Socket: path}
	} else {
		host, port, err := splitAddr(addr)
		if err != nil {
			return nil, err
		}
		u = gopyro.NewPyroURI(ObjectID, host, port)
	}
	p, err := proxy.NewURI(u, opts...)
	if err != nil {
		return nil, err
	}
	res, err := p.Call(ctx, "Open")
	var info Info
	if err == nil {
		err = res.Decode(&info)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	return &Client{p: p, info: info, pollCtx: pctx, stopPoll: cancel, pollDone: make(chan struct{}), progress: make(chan struct{})}, nil
}

func splitAddr(addr string) (string, int, error) {
	if addr == "" {
		return "127.0.0.1", DefaultPort, nil
	}
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: the whole address is the host.
		if _, err2 := strconv.Atoi(addr); err2 == nil {
			return "", 0, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "classic connect", Message: fmt.Sprintf("address %q is a port without a host: write 127.0.0.1:%s", addr, addr)}
		}
		return addr, DefaultPort, nil
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "classic connect", Message: fmt.Sprintf("address %q: the port must be a number from 1 to 65535", addr)}
	}
	return host, port, nil
}

// ID returns the session's id.
func (c *Client) ID() string { return c.info.ID }

// PID returns the process id of the session's worker, on the server.
func (c *Client) PID() int { return c.info.PID }

// Execute runs code in the session: statements, declarations (func,
// type, var, const; they persist for later calls) and imports, in order.
// Standard packages used by name are imported automatically. A file
// starting with "package main" runs as a program (its main). When
// Execute returns, everything the code printed to a redirected stream
// has been written to its writer.
func (c *Client) Execute(ctx context.Context, code string) error {
	cctx, timeout, cancel := extend(ctx)
	defer cancel()
	res, err := c.p.Call(cctx, "Execute", c.info.ID, code, timeout)
	if err != nil {
		return err
	}
	var m Marks
	if err := res.Decode(&m); err != nil {
		return err
	}
	return c.waitOutput(ctx, m)
}

// Eval evaluates expr in the session and returns its value as a T (the
// conversion checks ranges: 300 does not fit an int8). Channels, funcs
// and values holding them cannot be sent (ErrNotSendable).
func Eval[T any](ctx context.Context, c *Client, expr string) (T, error) {
	return valued[T](ctx, c, "Eval", expr, nil)
}

// Call calls the function the session knows as name (a func the session
// declared, or a standard one such as "os.Getwd", imported for it) with
// args, and returns its result as a T. A function with several results
// returns them as a slice; a non-nil error result fails the call with
// ErrPanic and the error's text.
func Call[T any](ctx context.Context, c *Client, name string, args ...any) (T, error) {
	if args == nil {
		args = []any{}
	}
	return valued[T](ctx, c, "Call", name, args)
}

func valued[T any](ctx context.Context, c *Client, method, src string, args []any) (T, error) {
	var zero, v T
	cctx, timeout, cancel := extend(ctx)
	defer cancel()
	in := []any{c.info.ID, src}
	if method == "Call" {
		in = append(in, args)
	}
	res, err := c.p.Call(cctx, method, append(in, timeout)...)
	if err != nil {
		return zero, err
	}
	var m Marks
	if err := res.Decode(&v, &m); err != nil {
		return zero, err
	}
	if err := c.waitOutput(ctx, m); err != nil {
		return zero, err
	}
	return v, nil
}

// replyGrace is how long past a call's deadline the client waits for the
// server to say what happened at the deadline.
const replyGrace = 3 * time.Second

// extend returns a context for a call that ends replyGrace after ctx's
// deadline (or when ctx is cancelled), and ctx's time left, to send.
func extend(ctx context.Context) (context.Context, int64, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx, 0, func() {}
	}
	left := max(time.Until(dl), time.Millisecond)
	cctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), dl.Add(replyGrace))
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	return cctx, int64(left), func() { stop(); cancel() }
}

// RedirectStdout sends the session's stdout to w from now on (streamed
// while code runs, in order, nothing lost); nil sends it back to the
// server's console.
func (c *Client) RedirectStdout(w io.Writer) error { return c.redirect(1, w) }

// RedirectStderr does for stderr what RedirectStdout does for stdout.
func (c *Client) RedirectStderr(w io.Writer) error { return c.redirect(2, w) }

func (c *Client) redirect(fd int, w io.Writer) error {
	i := fd - 1
	c.mu.Lock()
	old := c.w[i]
	c.w[i] = w
	if w != nil {
		c.last[i] = w
	}
	c.mu.Unlock()
	res, err := c.p.Call(context.Background(), "Redirect", c.info.ID, fd, w != nil)
	var from int64
	if err == nil {
		err = res.Decode(&from)
	}
	if err != nil {
		c.mu.Lock()
		c.w[i] = old
		c.mu.Unlock()
		return err
	}
	if w != nil {
		c.mu.Lock()
		c.delivered[i] = max(c.delivered[i], from)
		c.mu.Unlock()
		c.pollOnce.Do(func() {
			c.mu.Lock()
			c.polling = true
			c.mu.Unlock()
			go c.poll()
		})
	}
	return nil
}

// poll fetches redirected output and writes it, until the client closes
// or the session ends.
func (c *Client) poll() {
	defer close(c.pollDone)
	for {
		res, err := c.p.Call(c.pollCtx, "Output", c.info.ID)
		var chunks []Chunk
		if err == nil {
			err = res.Decode(&chunks)
		}
		if err != nil {
			if c.pollCtx.Err() == nil && gopyro.CodeOf(err) == gopyro.CodeTimeout {
				continue // a proxy-wide timeout cut the wait short
			}
			c.mu.Lock()
			c.pollFailed = err
			c.moved()
			c.mu.Unlock()
			return
		}
		for _, ch := range chunks {
			if ch.FD != 1 && ch.FD != 2 {
				continue
			}
			i := ch.FD - 1
			c.mu.Lock()
			w := c.w[i]
			if w == nil {
				w = c.last[i]
			}
			c.mu.Unlock()
			if w != nil {
				_, _ = w.Write(ch.Data)
			}
			c.mu.Lock()
			c.delivered[i] = max(c.delivered[i], ch.End)
			c.moved()
			c.mu.Unlock()
		}
	}
}

// moved wakes waitOutput. Called with c.mu held.
func (c *Client) moved() {
	close(c.progress)
	c.progress = make(chan struct{})
}

// waitOutput waits until the output up to m of each redirected stream
// has been written to its writer.
func (c *Client) waitOutput(ctx context.Context, m Marks) error {
	for {
		c.mu.Lock()
		ok := (c.w[0] == nil || c.delivered[0] >= m.Stdout) && (c.w[1] == nil || c.delivered[1] >= m.Stderr)
		failed, progress := c.pollFailed, c.progress
		c.mu.Unlock()
		switch {
		case ok:
			return nil
		case failed != nil:
			return failed
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return &gopyro.Error{Code: gopyro.CodeTimeout, Op: "classic output", Message: "the output had not all arrived by the deadline", Err: ctx.Err()}
		}
	}
}

// Upload copies the local file to remotePath on the server, in chunks:
// the data lands in a temporary file there and is renamed into place
// when complete, so a failed upload leaves nothing half-written.
func (c *Client) Upload(ctx context.Context, local, remotePath string) (err error) {
	f, err := os.Open(local)
	if err != nil {
		return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "upload", Message: err.Error()}
	}
	defer f.Close()
	res, err := c.p.Call(ctx, "PutBegin", c.info.ID, remotePath)
	var tok string
	if err == nil {
		err = res.Decode(&tok)
	}
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
			defer cancel()
			_, _ = c.p.Call(actx, "PutEnd", c.info.ID, tok, false)
		}
	}()
	buf := make([]byte, transferChunk)
	var off int64
	for {
		n, rerr := io.ReadFull(f, buf)
		if n > 0 {
			if _, err := c.p.Call(ctx, "PutChunk", c.info.ID, tok, off, buf[:n]); err != nil {
				return err
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "upload " + local, Message: rerr.Error()}
		}
	}
	_, err = c.p.Call(ctx, "PutEnd", c.info.ID, tok, true)
	return err
}

// Download copies remotePath on the server to the local file, in
// chunks, through a temporary file renamed into place when complete.
func (c *Client) Download(ctx context.Context, remotePath, local string) (err error) {
	res, err := c.p.Call(ctx, "Stat", c.info.ID, remotePath)
	var size int64
	if err == nil {
		err = res.Decode(&size)
	}
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".download-*")
	if err != nil {
		return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "download", Message: err.Error()}
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var off int64
	for off < size {
		res, err := c.p.Call(ctx, "GetChunk", c.info.ID, remotePath, off, transferChunk)
		var b []byte
		if err == nil {
			err = res.Decode(&b)
		}
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return &gopyro.Error{Code: gopyro.CodeRemote, Op: "download " + remotePath, Message: fmt.Sprintf("the file shrank to %d bytes while being read (it had %d)", off, size)}
		}
		if _, err := tmp.Write(b); err != nil {
			return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "download", Message: err.Error()}
		}
		off += int64(len(b))
	}
	if err := tmp.Close(); err != nil {
		return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "download", Message: err.Error()}
	}
	if err := os.Rename(tmp.Name(), local); err != nil {
		return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "download", Message: err.Error()}
	}
	return nil
}

// Close ends the session (its worker is killed) and the connection.
func (c *Client) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_, err := c.p.Call(ctx, "End", c.info.ID)
	if errors.Is(err, ErrSessionLost) {
		err = nil
	}
	c.stopPoll()
	c.pollOnce.Do(func() {}) // no poller starts from now on
	c.mu.Lock()
	polling := c.polling
	c.mu.Unlock()
	if polling {
		<-c.pollDone
	}
	return errors.Join(err, c.p.Close())
}
