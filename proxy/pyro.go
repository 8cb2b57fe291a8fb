package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/pyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// A proxy calls Python Pyro4 and Pyro5 daemons too, with nothing to
// configure. The first call to an address goes out in gopyro's protocol;
// a Python daemon refuses it (it never runs it) with an answer in its own
// protocol, which names its version; the proxy remembers that the address
// speaks Pyro and sends the call again, and every later call, as Pyro's
// own proxies do: a CONNECT handshake that fetches the object's metadata,
// then one INVOKE at a time on the connection. Arguments become Python
// values (internal/pyro), results are converted to the types Decode is
// given, Python exceptions arrive as *gopyro.Error with the Python class
// as RemoteType and the traceback as Stack, and Python generators come
// back as streams (Stream).

// pyroPeer is what a proxy learned of an address: it is served by a Python
// Pyro daemon speaking proto.
type pyroPeer struct {
	addr  string
	proto *pyro.Protocol
}

// errSpeaksPyro reports that the target turned out to be a Python Pyro
// daemon, which refused the gopyro request without running it: send it
// again, in Pyro's protocol.
var errSpeaksPyro = errors.New("proxy: the daemon speaks Python Pyro")

// learnPyro records that t's address is served by a daemon speaking Pyro
// protocol version, and drops the gopyro connection it refused.
func (p *Proxy) learnPyro(cl *wire.Client, t gopyro.URI, version uint16) error {
	var proto *pyro.Protocol
	switch version {
	case pyro.Pyro4.Version:
		proto = pyro.Pyro4
	case pyro.Pyro5.Version:
		proto = pyro.Pyro5
	default:
		p.dropConn(cl)
		return &gopyro.Error{Code: gopyro.CodeProtocol, Op: "dial", URI: p.where(t),
			Message: fmt.Sprintf("the daemon speaks Pyro protocol %d; gopyro speaks 48 (Pyro4) and 502 (Pyro5)", version)}
	}
	p.mu.Lock()
	p.py = pyroPeer{addr: t.Address(), proto: proto}
	if p.ln.cl == cl {
		p.ln = link{}
	}
	p.mu.Unlock()
	_ = cl.Close()
	return errSpeaksPyro
}

// knownPyro reports that the proxy's target is known to be a Python
// daemon: its calls need no gopyro encoding.
func (p *Proxy) knownPyro() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.target.IsZero() && p.pyroForLocked(p.target) != nil
}

// pyroForLocked returns the Pyro protocol t's daemon speaks; nil if it is not
// known to be a Python daemon. Called with p.mu held.
func (p *Proxy) pyroForLocked(t gopyro.URI) *pyro.Protocol {
	if p.py.proto != nil && p.py.addr == t.Address() {
		return p.py.proto
	}
	return nil
}

// pyroClient is a connection to a Python Pyro daemon. Pyro's protocol has
// one request in flight per connection: exchanges take turns.
type pyroClient struct {
	proto  *pyro.Protocol
	format pyro.Format
	ser    uint16
	key    []byte // Pyro4's HMAC key: the proxy's token
	max    int64
	conn   net.Conn
	br     *bufio.Reader
	hooks  *pyro.Hooks

	mu   sync.Mutex // one exchange at a time
	seq  uint16     // guarded by mu
	wbuf []byte     // guarded by mu

	meta   pyro.Dict // the object's metadata from the handshake
	broken atomic.Bool
}

// pyroHooks convert references: a *Proxy (or a daemon.Ref) argument
// travels as a Python proxy for its object, a Python proxy or URI result
// decodes into a *Proxy.
var pyroHooks = &pyro.Hooks{
	NewRef: wire.NewRefValue,
	RefOf: func(v reflect.Value) (pyro.Proxied, bool) {
		s, ok := wire.RefURIOf(v)
		if !ok {
			return pyro.Proxied{}, false
		}
		u, err := gopyro.Parse(s)
		if err != nil {
			return pyro.Proxied{}, false
		}
		return pyro.Proxied{URI: u}, true
	},
}

// dialPyro connects to the Python daemon serving t and does Pyro's
// handshake for t's object.
func dialPyro(ctx context.Context, t gopyro.URI, proto *pyro.Protocol, cfg config) (*pyroClient, error) {
	conn, err := wire.Dial(ctx, t.Network(), t.Address(), wire.DialOptions{TLS: cfg.tls, ConnectTimeout: cfg.connectTimeout})
	if err != nil {
		return nil, err
	}
	f := cfg.pyroFormat
	if f == 0 {
		f = pyro.Serpent
	}
	c := &pyroClient{proto: proto, format: f, ser: proto.SerializerID(f), max: cfg.maxMessage, conn: conn,
		br: bufio.NewReaderSize(conn, 64<<10), hooks: pyroHooks}
	handshake := "hello"
	if cfg.token != "" {
		if proto == pyro.Pyro4 {
			c.key = []byte(cfg.token)
		} else {
			handshake = cfg.token
		}
	}
	data, err := f.Marshal(pyro.Dict{{Key: "handshake", Value: handshake}, {Key: "object", Value: t.Object}})
	if err != nil {
		conn.Close()
		return nil, err
	}
	timeout := cfg.connectTimeout
	if timeout == 0 {
		timeout = wire.DefaultConnectTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rep, err := c.exchange(hctx, &pyro.Message{Type: pyro.MsgConnect, Flags: proto.FlagMeta, Serializer: c.ser, Data: data}, false)
	if se, ok := errors.AsType[*pyro.SecurityError](err); ok {
		return nil, &gopyro.Error{Code: gopyro.CodeSecurity, Message: se.Msg + " (the proxy's token is the Pyro4 daemon's HMAC key: see WithToken)"}
	}
	if err != nil {
		return nil, err
	}
	v, err := c.decode(rep)
	if err != nil {
		c.close()
		return nil, err
	}
	switch rep.Type {
	case pyro.MsgConnectOK:
		if d, ok := v.(pyro.Dict); ok {
			md, _ := d.Get("meta")
			c.meta, _ = md.(pyro.Dict)
		}
		return c, nil
	case pyro.MsgConnectFail:
		c.close()
		reason := pyro.Describe(v)
		if s, ok := v.(string); ok {
			reason = s
		}
		code := gopyro.CodeCommunication
		switch {
		case reason == "unknown object":
			code = gopyro.CodeNotFound
		case strings.Contains(reason, "hmac") || strings.Contains(reason, "handshake"):
			code = gopyro.CodeSecurity
		}
		return nil, &gopyro.Error{Code: code, Remote: true, RemoteType: proto.Name + ".errors.CommunicationError", Message: "connection rejected: " + reason}
	}
	c.close()
	return nil, &pyro.ProtocolError{Msg: fmt.Sprintf("a handshake answered with message type %d", rep.Type)}
}

// decode unmarshals a message's data in its serializer, which must be the
// one the client speaks (CONNECTFAIL may come in marshal).
func (c *pyroClient) decode(m *pyro.Message) (any, error) {
	f, err := c.proto.Format(m.Serializer)
	if err != nil {
		return nil, err
	}
	if f != c.format && m.Type != pyro.MsgConnectFail {
		return nil, &pyro.ProtocolError{Msg: fmt.Sprintf("a reply in serializer %d, not %d", m.Serializer, c.ser)}
	}
	return f.Unmarshal(m.Data)
}

// exchange sends m and, unless oneway, returns the reply. Any failure
// ends the connection: after a timeout or a cancellation, the reply
// would still come, out of turn.
func (c *pyroClient) exchange(ctx context.Context, m *pyro.Message, oneway bool) (*pyro.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken.Load() {
		return nil, wire.ErrClientClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.seq++
	m.Seq = c.seq
	b, err := c.proto.AppendMessage(c.wbuf[:0], m, c.key)
	if err != nil {
		return nil, err
	}
	if cap(b) <= 1<<20 {
		c.wbuf = b
	}
	dl, _ := ctx.Deadline()
	_ = c.conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			// The cancellation raced the end of the exchange: its past
			// deadline may land on the next one. Start afresh instead.
			c.close()
		}
	}()
	fail := func(err error) (*pyro.Message, error) {
		c.close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
			// The connection's deadline is the context's: it may fire
			// a moment before the context says so.
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	if _, err := c.conn.Write(b); err != nil {
		return fail(err)
	}
	if oneway {
		return nil, nil
	}
	rep, err := c.proto.ReadMessage(c.br, c.max, c.key)
	if err != nil {
		return fail(err)
	}
	if rep.Seq != m.Seq {
		return fail(&pyro.ProtocolError{Msg: fmt.Sprintf("a reply with sequence number %d to request %d", rep.Seq, m.Seq)})
	}
	return rep, nil
}

func (c *pyroClient) close() error {
	c.broken.Store(true)
	return c.conn.Close()
}

// pyroReply is what a Python daemon answered.
type pyroReply struct {
	v      any    // the result
	stream string // the id of the item stream the call returned
	done   bool   // a stream's items have ended (StopIteration)
}

// invoke sends one INVOKE and reads its result: a value, an item stream,
// or an exception, returned as a *gopyro.Error.
func (c *pyroClient) invoke(ctx context.Context, object, method string, args []any, flags uint16) (pyroReply, error) {
	data, err := c.format.EncodeCall(pyro.Call{Object: object, Method: method, Args: args})
	if err != nil {
		return pyroReply{}, &gopyro.Error{Code: gopyro.CodeArgument, Message: "cannot serialize the arguments", Err: err}
	}
	rep, err := c.exchange(ctx, &pyro.Message{Type: pyro.MsgInvoke, Flags: flags, Serializer: c.ser, Data: data}, flags&pyro.FlagOneway != 0)
	if err != nil || rep == nil {
		return pyroReply{}, err
	}
	if rep.Type != pyro.MsgResult {
		c.close()
		return pyroReply{}, &pyro.ProtocolError{Msg: fmt.Sprintf("an INVOKE answered with message type %d", rep.Type)}
	}
	v, err := c.decode(rep)
	if err != nil {
		c.close()
		return pyroReply{}, err
	}
	if rep.Flags&c.proto.FlagStream != 0 {
		id, _ := rep.Annotation("STRM")
		if len(id) == 0 {
			return pyroReply{}, &pyro.ProtocolError{Msg: "an item stream result without a stream id"}
		}
		return pyroReply{stream: string(id)}, nil
	}
	if rep.Flags&pyro.FlagException != 0 {
		ge := c.proto.Error(v)
		if ge.RemoteType == "builtins.StopIteration" {
			return pyroReply{done: true}, nil
		}
		return pyroReply{}, ge
	}
	return pyroReply{v: v}, nil
}

// ping sends Pyro's MSG_PING.
func (c *pyroClient) ping(ctx context.Context) error {
	rep, err := c.exchange(ctx, &pyro.Message{Type: pyro.MsgPing, Serializer: c.ser, Data: []byte("ping")}, false)
	if err == nil && rep.Type != pyro.MsgPing {
		c.close()
		err = &pyro.ProtocolError{Msg: fmt.Sprintf("a PING answered with message type %d", rep.Type)}
	}
	return err
}

// method returns the name the Python object knows method by: a Go caller
// may write "WelcomeMessage" for Python's "welcomeMessage" or
// "welcome_message", as a Python caller may for a Go method.
func (c *pyroClient) method(name string) string {
	md, _ := c.meta.Get("methods")
	methods := pyro.Natural(c.proto, md)
	list, _ := methods.([]any)
	if len(list) == 0 {
		return name
	}
	for _, alt := range pythonNames(name) {
		if slices.Contains(list, any(alt)) {
			return alt
		}
	}
	return name
}

// pythonNames are the names a Python method called name in Go code may
// have: name itself, lowerCamel and snake_case.
func pythonNames(name string) []string {
	r, size := utf8.DecodeRuneInString(name)
	return []string{name, string(unicode.ToLower(r)) + name[size:], pyro.SnakeCase(name)}
}

// args converts a call's Go arguments to Python values.
func (c *pyroClient) args(args []any) ([]any, error) {
	out := make([]any, len(args))
	for i, a := range args {
		v, err := pyro.FromGo(c.proto, c.hooks, reflect.ValueOf(a))
		if err != nil {
			return nil, &gopyro.Error{Code: gopyro.CodeArgument, Message: fmt.Sprintf("argument %d (%T)", i+1, a), Err: err}
		}
		out[i] = v
	}
	return out, nil
}

// sendPyro does r on a Python daemon: gopyro's built-in calls become
// their Pyro counterparts (MSG_PING, get_metadata, get_next_stream_item,
// close_stream), a batch Pyro's "<batch>" call.
func (p *Proxy) sendPyro(ctx context.Context, c *pyroClient, t gopyro.URI, r request) (reply, error) {
	object := t.Object
	if r.object != "" {
		object = r.object
	}
	var (
		rep   pyroReply
		err   error
		flags uint16
	)
	if r.oneway {
		flags |= pyro.FlagOneway
	}
	switch {
	case object == gopyro.DaemonID && r.method == wire.MethodPing:
		err = c.ping(ctx)
	case object == gopyro.DaemonID && r.method == wire.MethodGetMetadata:
		rep, err = c.invoke(ctx, object, "get_metadata", []any{t.Object}, flags)
		if err == nil {
			rep.v = pyroMetadata(t.Object, rep.v)
		}
	case object == gopyro.DaemonID && r.method == wire.MethodStreamNext:
		rep, err = c.invoke(ctx, object, "get_next_stream_item", r.args, flags)
	case object == gopyro.DaemonID && r.method == wire.MethodStreamClose:
		rep, err = c.invoke(ctx, object, "close_stream", r.args, flags|pyro.FlagOneway)
	case r.batch != "":
		calls := make([]any, len(r.calls))
		for i, bc := range r.calls {
			args, aerr := c.args(bc.args)
			if aerr != nil {
				return reply{}, p.pyroError(c, r.op(), t, aerr)
			}
			calls[i] = pyro.Tuple{c.method(bc.method), pyro.Tuple(args), pyro.Dict{}}
		}
		rep, err = c.invoke(ctx, object, "<batch>", calls, flags|pyro.FlagBatch)
	default:
		var args []any
		if args, err = c.args(r.args); err == nil {
			rep, err = c.invoke(ctx, object, c.method(r.method), args, flags)
		}
	}
	if err != nil {
		return reply{}, p.pyroError(c, r.op(), t, err)
	}
	return reply{py: &rep, proto: c.proto}, nil
}

// pyroMetadata turns Pyro's metadata dict into gopyro's shape.
func pyroMetadata(id string, v any) any {
	d, _ := v.(pyro.Dict)
	out := pyro.Dict{{Key: "id", Value: id}, {Key: "mode", Value: "python"}}
	for _, k := range []string{"methods", "oneway"} {
		x, _ := d.Get(k)
		out = append(out, pyro.Item{Key: k, Value: x})
	}
	return out
}

// pyroError classifies the failure of an exchange with a Python daemon.
func (p *Proxy) pyroError(c *pyroClient, op string, t gopyro.URI, err error) error {
	if ge, ok := errors.AsType[*gopyro.Error](err); ok {
		if ge.Remote {
			return p.remoteError(ge, op, t)
		}
		if ge.Op == "" {
			ge.Op, ge.URI = op, p.where(t)
		}
		return ge
	}
	ge := &gopyro.Error{Op: op, URI: p.where(t), Err: err}
	var pe *pyro.ProtocolError
	var se *pyro.SecurityError
	var tl *pyro.TooLargeError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		ge.Code, ge.Message = gopyro.CodeTimeout, "no reply before the deadline"
	case errors.Is(err, context.Canceled):
		ge.Code, ge.Message = gopyro.CodeCanceled, "call canceled"
	case errors.As(err, &se):
		ge.Code = gopyro.CodeSecurity
	case errors.As(err, &pe), errors.As(err, &tl):
		ge.Code = gopyro.CodeProtocol
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		ge.Code, ge.Message = gopyro.CodeCommunication, "connection closed by the daemon"
	default:
		ge.Code, ge.Message = gopyro.CodeCommunication, "connection failed"
	}
	if c.broken.Load() {
		p.dropLink(link{pc: c})
	}
	return ge
}
