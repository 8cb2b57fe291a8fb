package nameserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
	"github.com/gopyro/gopyro/proxy"
)

// Client is a typed proxy for a name server. It is safe for concurrent
// use and satisfies proxy.Resolver.
type Client struct {
	p *proxy.Proxy
}

var _ proxy.Resolver = (*Client)(nil)

// NewClient returns a client for the name server at uri (its PYRO URI, or
// a "host:port"). It does not connect: the first call does (use
// [Client.Ping] to check that the name server answers, or [Locate] to
// find one).
func NewClient(uri string, opts ...proxy.Option) (*Client, error) {
	u, err := gopyro.Parse(uri)
	if err != nil {
		host, port, serr := net.SplitHostPort(uri)
		if serr != nil {
			return nil, err
		}
		n, perr := strconv.Atoi(port)
		if perr != nil {
			return nil, err
		}
		u = gopyro.NewPyroURI(gopyro.NameServerID, host, n)
	}
	p, err := proxy.NewURI(u, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{p: p}, nil
}

// URI returns the name server's URI.
func (c *Client) URI() gopyro.URI { return c.p.URI() }

// Close closes the connection.
func (c *Client) Close() error { return c.p.Close() }

// LocateOption configures [Locate].
type LocateOption func(*locateConfig)

type locateConfig struct {
	addr        string
	mdns        bool
	mdnsTimeout time.Duration
	proxyOpts   []proxy.Option
}

// At names the name server's host:port; Locate then tries nothing else.
func At(hostport string) LocateOption { return func(c *locateConfig) { c.addr = hostport } }

// WithMDNS lets Locate fall back to mDNS discovery (multicast) for up to
// timeout (0: 2s) when the name server is not found otherwise.
func WithMDNS(timeout time.Duration) LocateOption {
	return func(c *locateConfig) {
		c.mdns = true
		c.mdnsTimeout = timeout
	}
}

// WithProxyOptions configures the connection to the name server (TLS,
// token, timeouts).
func WithProxyOptions(opts ...proxy.Option) LocateOption {
	return func(c *locateConfig) { c.proxyOpts = append(c.proxyOpts, opts...) }
}

// Locate finds a name server and returns a client for it. The order: the
// address given with [At]; otherwise GOPYRO_NS_HOST and GOPYRO_NS_PORT;
// otherwise 127.0.0.1:9090; and, only with [WithMDNS], mDNS discovery when
// that did not answer a ping.
func Locate(ctx context.Context, opts ...LocateOption) (*Client, error) {
	var cfg locateConfig
	for _, o := range opts {
		o(&cfg)
	}
	var target gopyro.URI
	if cfg.addr != "" {
		var err error
		if target, err = ParseAddress(cfg.addr); err != nil {
			return nil, err
		}
	} else {
		if err := proxy.NSEnvError(); err != nil {
			return nil, err
		}
		target = proxy.NameServerURI(gopyro.URI{})
	}
	c, err := NewClient(target.String(), cfg.proxyOpts...)
	if err != nil {
		return nil, err
	}
	perr := c.Ping(ctx)
	if perr == nil {
		return c, nil
	}
	c.Close()
	switch gopyro.CodeOf(perr) {
	case gopyro.CodeSecurity:
		// It answered, and refused: say so, not that nobody answered.
		return nil, &gopyro.Error{Code: gopyro.CodeSecurity, Op: "locate", URI: target.String(),
			Message: "the name server refused this client's token (give the name server's: --token, or GOPYRO_TOKEN)", Err: perr}
	case gopyro.CodeTimeout, gopyro.CodeCanceled:
		return nil, &gopyro.Error{Code: gopyro.CodeOf(perr), Op: "locate", URI: target.String(),
			Message: "the name server did not answer in time", Err: perr}
	}
	if cfg.addr != "" || !cfg.mdns {
		return nil, &gopyro.Error{Code: gopyro.CodeCommunication, Op: "locate", URI: target.String(),
			Message: "no name server answered (start one with: gopyro ns)", Err: perr}
	}
	timeout := cfg.mdnsTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u, err := Discover(dctx)
	if err != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeCommunication, Op: "locate", URI: target.String(),
			Message: "no name server answered, and none was found over mDNS", Err: errors.Join(perr, err)}
	}
	return NewClient(u.String(), cfg.proxyOpts...)
}

// ParseAddress reads a name server's address as a person writes it: HOST:PORT,
// :PORT (127.0.0.1), HOST (port 9090), ./u:PATH (a unix socket), or the URI
// gopyro ns prints (PYRO:Pyro.NameServer@HOST:PORT).
func ParseAddress(addr string) (gopyro.URI, error) {
	bad := func(why string) (gopyro.URI, error) {
		return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "locate",
			Message: fmt.Sprintf("name server address %q: %s (want HOST:PORT, :PORT, HOST or PYRO:Pyro.NameServer@HOST:PORT)", addr, why)}
	}
	if path, ok := strings.CutPrefix(addr, "./u:"); ok && path != "" {
		return gopyro.URI{Scheme: gopyro.SchemePyro, Object: gopyro.NameServerID, Socket: path}, nil
	}
	if strings.HasPrefix(strings.ToUpper(addr), "PYRO") {
		u, err := gopyro.Parse(addr)
		if err != nil {
			return bad(err.Error())
		}
		if u.Scheme != gopyro.SchemePyro || u.Object != gopyro.NameServerID || u.Location() == "" {
			return bad("not a name server's PYRO URI with a location")
		}
		return u, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: the host alone, on the name server's port.
		if strings.Contains(addr, ":") && !strings.HasPrefix(addr, "[") {
			return bad(err.Error())
		}
		host, port = strings.Trim(addr, "[]"), strconv.Itoa(gopyro.NameServerPort)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return bad("the port must be a number from 1 to 65535")
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return gopyro.NewPyroURI(gopyro.NameServerID, host, n), nil
}

// NSEnvAddress returns the name server address from GOPYRO_NS_HOST and
// GOPYRO_NS_PORT, or "" when neither is set.
func NSEnvAddress() string {
	if os.Getenv(proxy.EnvNSHost) == "" && os.Getenv(proxy.EnvNSPort) == "" {
		return ""
	}
	return proxy.NameServerURI(gopyro.URI{}).Location()
}

// RegisterOption configures [Client.Register].
type RegisterOption func(*regOpts)

type regOpts struct {
	safe bool
	meta []string
}

// Safe refuses to replace an existing registration (gopyro.ErrExists).
func Safe() RegisterOption { return func(o *regOpts) { o.safe = true } }

// Metadata attaches tags to the registration, for PYROMETA and YPLookup.
func Metadata(tags ...string) RegisterOption {
	return func(o *regOpts) { o.meta = append(o.meta, tags...) }
}

// Register maps name to uri, a PYRO URI (parse one with gopyro.Parse).
func (c *Client) Register(ctx context.Context, name string, uri gopyro.URI, opts ...RegisterOption) error {
	var o regOpts
	for _, f := range opts {
		f(&o)
	}
	if uri.Scheme != gopyro.SchemePyro {
		return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "register", URI: uri.String(), Message: "a name maps to a PYRO uri"}
	}
	_, err := c.p.Call(ctx, wire.NSRegister, name, uri.String(), o.safe, nonNil(o.meta))
	return err
}

// Lookup returns the URI registered under name.
func (c *Client) Lookup(ctx context.Context, name string) (gopyro.URI, error) {
	s, err := proxy.Call[string](ctx, c.p, wire.NSLookup, name)
	if err != nil {
		return gopyro.URI{}, err
	}
	return gopyro.Parse(s)
}

// LookupEntry returns the registration of name with its metadata.
func (c *Client) LookupEntry(ctx context.Context, name string) (Entry, error) {
	return proxy.Call[Entry](ctx, c.p, wire.NSLookupEntry, name)
}

// List returns the registrations whose names start with prefix (all of
// them for ""), sorted by name.
func (c *Client) List(ctx context.Context, prefix string) ([]Entry, error) {
	return proxy.Call[[]Entry](ctx, c.p, wire.NSListEntries, prefix, "")
}

// ListRegex returns the registrations whose whole names match the regular
// expression regex (Go syntax), sorted by name.
func (c *Client) ListRegex(ctx context.Context, regex string) ([]Entry, error) {
	if regex == "" {
		return nil, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "list", Message: "empty regex"}
	}
	return proxy.Call[[]Entry](ctx, c.p, wire.NSListEntries, "", regex)
}

// YPLookup returns the registrations carrying every tag of all and at
// least one of anyOf, sorted by name.
func (c *Client) YPLookup(ctx context.Context, all, anyOf []string) ([]Entry, error) {
	return proxy.Call[[]Entry](ctx, c.p, wire.NSYPLookupEntries, nonNil(all), nonNil(anyOf))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Remove removes the registration of name and reports whether there was
// one. The name server never removes itself.
func (c *Client) Remove(ctx context.Context, name string) (bool, error) {
	if name == "" {
		return false, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "remove", Message: "empty name"}
	}
	if name == gopyro.NameServerID {
		return false, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "remove", URI: name,
			Message: "the name server's own registration is never removed"}
	}
	n, err := proxy.Call[int](ctx, c.p, wire.NSRemove, name, "", "")
	return n > 0, err
}

// RemovePrefix removes every registration whose name starts with prefix
// (not empty) and returns how many it removed.
func (c *Client) RemovePrefix(ctx context.Context, prefix string) (int, error) {
	if prefix == "" {
		return 0, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "remove", Message: "empty prefix"}
	}
	return proxy.Call[int](ctx, c.p, wire.NSRemove, "", prefix, "")
}

// RemoveRegex removes every registration whose whole name matches regex
// (not empty) and returns how many it removed.
func (c *Client) RemoveRegex(ctx context.Context, regex string) (int, error) {
	if regex == "" {
		return 0, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "remove", Message: "empty regex"}
	}
	return proxy.Call[int](ctx, c.p, wire.NSRemove, "", "", regex)
}

// SetMetadata replaces the tags of name.
func (c *Client) SetMetadata(ctx context.Context, name string, tags ...string) error {
	_, err := c.p.Call(ctx, wire.NSSetMetadata, name, nonNil(tags))
	return err
}

// Count returns the number of registrations.
func (c *Client) Count(ctx context.Context) (int, error) {
	return proxy.Call[int](ctx, c.p, wire.NSCount)
}

// Ping checks that the name server answers.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.p.Call(ctx, wire.NSPing)
	return err
}

// Resolve implements proxy.Resolver with this client's name server.
func (c *Client) Resolve(ctx context.Context, u gopyro.URI) (gopyro.URI, error) {
	switch u.Scheme {
	case gopyro.SchemePyro:
		return u, nil
	case gopyro.SchemePyroName:
		return c.Lookup(ctx, u.Object)
	case gopyro.SchemePyroMeta:
		es, err := c.YPLookup(ctx, u.Tags, nil)
		if err != nil {
			return gopyro.URI{}, err
		}
		if len(es) == 0 {
			return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeNotFound, Op: "resolve", URI: u.String(), Message: "no registration carries all the tags"}
		}
		uris := make([]string, len(es))
		for i, e := range es {
			uris[i] = e.URI
		}
		return gopyro.Parse(wire.ChooseOne(uris))
	}
	return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "resolve", URI: u.String(), Message: "unknown scheme"}
}
