package daemon

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gopyro/gopyro"
)

// Default limits.
const (
	DefaultMaxInFlight      = 1024
	DefaultMaxConns         = 1024
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultFrameTimeout     = 30 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultWriteTimeout     = 30 * time.Second
	DefaultMaxBytesInFlight = 128 << 20
	DefaultMaxConnInFlight  = 128
)

// Config holds a daemon's settings. The zero Config gives the defaults; the
// CLI fills one from flags. Options applied to [New] change the same fields.
type Config struct {
	// MaxMessageSize is the largest request payload accepted, in bytes.
	MaxMessageSize int64
	// MaxInFlight bounds the calls running at once, oneway calls included.
	// A call over the limit fails with gopyro.ErrBusy; a oneway call over
	// the limit waits for a slot (see DropOneway). Default 1024.
	MaxInFlight int
	// MaxConnInFlight bounds the requests of one connection read and not
	// yet answered: the daemon stops reading from a connection that has
	// that many (TCP back-pressure reaches its client), so that one
	// client cannot take every slot of MaxInFlight, and replies a client
	// does not read cannot pile up. Default 128.
	MaxConnInFlight int
	// MaxBytesInFlight is the daemon-wide budget of memory for requests
	// and replies in flight, in bytes: a request's body is charged before
	// it is read, its decoded form when it is decoded and its reply while
	// it is written. While the budget is spent the daemon reads no more
	// requests (their senders wait), and a request that would decode to
	// more than the budget fails with gopyro.ErrProtocol. One connection
	// may hold an eighth of it (or one request of any size), and an
	// eighth is kept for requests of at most a 32nd of it, so that large
	// requests sent slowly or replies not read cannot stop small calls.
	// Default 128 MiB.
	MaxBytesInFlight int64
	// DropOneway makes a oneway call over MaxInFlight be dropped instead
	// of waiting for a slot: the old, lossy behaviour, for senders that
	// prefer losing calls to waiting. Each drop is counted
	// ([Daemon.Stats]) and logged (at most once a second).
	DropOneway bool
	// MaxConns bounds the open client connections; more are closed at once.
	MaxConns int
	// TLS, when set, makes the daemon speak TLS. Set ClientAuth to
	// tls.RequireAndVerifyClientCert to require client certificates.
	TLS *tls.Config
	// Token, when set, is a shared secret every call must present
	// (proxy.WithToken). A call with a wrong token fails with
	// gopyro.ErrSecurity and its connection is closed.
	Token string
	// Advertise is the host:port (or "./u:PATH", a unix socket) written
	// into URIs, for daemons behind NAT or bound to 0.0.0.0. Default: the
	// listener's address, a unix listener's path included.
	Advertise string
	// SendStacks includes the remote stack trace of a panicking method in
	// the error sent to the caller.
	SendStacks bool
	// Logger receives the daemon's log lines: warnings an operator must
	// see (serving a non-loopback address without TLS or token, limits
	// reached, a panicking method's stack) and debug detail. Default:
	// slog.Default(), as net/http logs to the standard logger; pass
	// slog.New(slog.DiscardHandler) for silence.
	Logger *slog.Logger

	// HandshakeTimeout bounds a new connection's TLS handshake and its
	// whole first request. Default 10s; negative: no bound.
	HandshakeTimeout time.Duration
	// FrameTimeout bounds the arrival of each request once its first byte
	// has come (a peer that trickles a frame holds its connection no
	// longer). Default 30s; negative: no bound.
	FrameTimeout time.Duration
	// IdleTimeout closes a connection on which no request arrived for this
	// long while none was being served. Default 5m; negative: never.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write of a reply: a client that does not
	// take a reply within it (it stopped reading) is disconnected, so its
	// replies neither pile up in memory nor hold goroutines. Default 30s;
	// negative: no bound.
	WriteTimeout time.Duration

	// MaxStreams bounds the open streams (results of type iter.Seq or
	// channel) per client connection. Default 64.
	MaxStreams int
	// StreamLinger is how long a stream whose client disconnected stays
	// open for the client to reconnect and go on; then it is closed.
	// Default 30s.
	StreamLinger time.Duration
	// StreamChunk is the most items sent per round trip of a stream (a
	// chunk also stops at about 1 MiB). Default 512.
	StreamChunk int
}

// Option changes a Config.
type Option func(*Config)

// WithConfig replaces the whole configuration (later options still apply).
func WithConfig(c Config) Option { return func(dst *Config) { *dst = c } }

// WithMaxMessageSize sets [Config.MaxMessageSize].
func WithMaxMessageSize(n int64) Option { return func(c *Config) { c.MaxMessageSize = n } }

// WithMaxInFlight sets [Config.MaxInFlight].
func WithMaxInFlight(n int) Option { return func(c *Config) { c.MaxInFlight = n } }

// WithMaxConnInFlight sets [Config.MaxConnInFlight].
func WithMaxConnInFlight(n int) Option { return func(c *Config) { c.MaxConnInFlight = n } }

// WithMaxBytesInFlight sets [Config.MaxBytesInFlight].
func WithMaxBytesInFlight(n int64) Option { return func(c *Config) { c.MaxBytesInFlight = n } }

// WithDropOneway sets [Config.DropOneway].
func WithDropOneway(on bool) Option { return func(c *Config) { c.DropOneway = on } }

// WithMaxConns sets [Config.MaxConns].
func WithMaxConns(n int) Option { return func(c *Config) { c.MaxConns = n } }

// WithTLS sets [Config.TLS].
func WithTLS(cfg *tls.Config) Option { return func(c *Config) { c.TLS = cfg } }

// WithToken sets [Config.Token].
func WithToken(secret string) Option { return func(c *Config) { c.Token = secret } }

// WithAdvertise sets [Config.Advertise].
func WithAdvertise(hostport string) Option { return func(c *Config) { c.Advertise = hostport } }

// WithStacks sets [Config.SendStacks].
func WithStacks(on bool) Option { return func(c *Config) { c.SendStacks = on } }

// WithMaxStreams sets [Config.MaxStreams].
func WithMaxStreams(perConn int) Option { return func(c *Config) { c.MaxStreams = perConn } }

// WithStreamLinger sets [Config.StreamLinger].
func WithStreamLinger(d time.Duration) Option { return func(c *Config) { c.StreamLinger = d } }

// WithStreamChunk sets [Config.StreamChunk].
func WithStreamChunk(items int) Option { return func(c *Config) { c.StreamChunk = items } }

// WithHandshakeTimeout sets [Config.HandshakeTimeout].
func WithHandshakeTimeout(d time.Duration) Option { return func(c *Config) { c.HandshakeTimeout = d } }

// WithFrameTimeout sets [Config.FrameTimeout].
func WithFrameTimeout(d time.Duration) Option { return func(c *Config) { c.FrameTimeout = d } }

// WithIdleTimeout sets [Config.IdleTimeout].
func WithIdleTimeout(d time.Duration) Option { return func(c *Config) { c.IdleTimeout = d } }

// WithWriteTimeout sets [Config.WriteTimeout].
func WithWriteTimeout(d time.Duration) Option { return func(c *Config) { c.WriteTimeout = d } }

// WithLogger sets [Config.Logger].
func WithLogger(l *slog.Logger) Option { return func(c *Config) { c.Logger = l } }

func (c *Config) fill() error {
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = gopyro.DefaultMaxMessageSize
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnInFlight == 0 {
		c.MaxConnInFlight = DefaultMaxConnInFlight
	}
	if c.MaxBytesInFlight == 0 {
		c.MaxBytesInFlight = DefaultMaxBytesInFlight
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.FrameTimeout == 0 {
		c.FrameTimeout = DefaultFrameTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.StreamLinger == 0 {
		c.StreamLinger = DefaultStreamLinger
	}
	if c.StreamChunk == 0 {
		c.StreamChunk = DefaultStreamChunk
	}
	bad := func(msg string) error {
		return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "daemon.New", Message: msg}
	}
	switch {
	case c.MaxMessageSize < gopyro.MinMessageSize:
		return bad(fmt.Sprintf("MaxMessageSize must be at least %d bytes", gopyro.MinMessageSize))
	case c.MaxInFlight < 1:
		return bad("MaxInFlight must be positive")
	case c.MaxConns < 1:
		return bad("MaxConns must be positive")
	case c.MaxConnInFlight < 1:
		return bad("MaxConnInFlight must be positive")
	case c.MaxBytesInFlight < gopyro.MinMessageSize:
		return bad(fmt.Sprintf("MaxBytesInFlight must be at least %d bytes", gopyro.MinMessageSize))
	case c.MaxStreams < 1, c.StreamLinger < 0, c.StreamChunk < 1:
		return bad("MaxStreams and StreamChunk must be positive, StreamLinger not negative")
	}
	if c.Advertise != "" {
		if _, err := parseLocation(c.Advertise); err != nil {
			return bad("Advertise: " + err.Error())
		}
	}
	return nil
}

// maxPort is the largest TCP port.
const maxPort = 65535

// location is where a daemon's URIs say it is.
// location is where a daemon's URIs point: host and port, or a unix
// socket's path.
type location struct {
	host   string
	port   int
	socket string
}

// known reports that URIs can be made.
func (l location) known() bool { return l.port != 0 || l.socket != "" }

// uri is the URI of object id at l.
func (l location) uri(id string) gopyro.URI {
	if l.socket != "" {
		return gopyro.URI{Scheme: gopyro.SchemePyro, Object: id, Socket: l.socket}
	}
	return gopyro.NewPyroURI(id, l.host, l.port)
}

// listenerLocation is the location ln listens on.
func listenerLocation(a net.Addr) (location, error) {
	if ua, ok := a.(*net.UnixAddr); ok {
		if ua.Name == "" || strings.HasPrefix(ua.Name, "@") {
			return location{}, &gopyro.Error{Code: gopyro.CodeInvalid, Message: "an unnamed or abstract unix socket has no path for URIs"}
		}
		return location{socket: ua.Name}, nil
	}
	return parseLocation(a.String())
}

// parseLocation reads host:port, or "./u:PATH" for a unix socket.
func parseLocation(s string) (location, error) {
	if path, ok := strings.CutPrefix(s, "./u:"); ok {
		if path == "" {
			return location{}, &gopyro.Error{Code: gopyro.CodeInvalid, Message: "an empty unix socket path"}
		}
		return location{socket: path}, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return location{}, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > maxPort {
		return location{}, &gopyro.Error{Code: gopyro.CodeInvalid, Message: "bad port " + strconv.Quote(p)}
	}
	return location{host: h, port: port}, nil
}

// RegisterOption changes how one object is registered.
type RegisterOption func(*regConfig)

type regConfig struct {
	id     string
	force  bool
	oneway []string
	pyro   any // the facade Python clients call
}

// WithID registers the object under id instead of an automatic obj_<hex>.
func WithID(id string) RegisterOption { return func(r *regConfig) { r.id = id } }

// Force replaces an object already registered under the same id.
func Force() RegisterOption { return func(r *regConfig) { r.force = true } }

// WithOneway declares methods (Go names) as oneway in the object's
// metadata, as Pyro's @oneway does: proxies that read the metadata call
// them without waiting for a reply. Any method can still be called oneway
// with proxy.Proxy.Oneway.
func WithOneway(methods ...string) RegisterOption {
	return func(r *regConfig) { r.oneway = append(r.oneway, methods...) }
}

// WithPyroFacade serves facade, instead of the object itself, to Python
// Pyro clients that call the object's id: for an object whose Go API and
// the API its Python callers expect differ (the name server answers
// Pyro's lookup with a URI object, and takes Pyro's keyword arguments).
// facade is called as a single instance, concurrently.
func WithPyroFacade(facade any) RegisterOption { return func(r *regConfig) { r.pyro = facade } }
