package proxy

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/gopyro/gopyro/internal/pyro"
)

type config struct {
	timeout        time.Duration
	connectTimeout time.Duration
	tls            *tls.Config
	token          string
	maxMessage     int64
	retries        int
	resolver       Resolver
	pyroFormat     pyro.Format // the serializer for Python daemons; 0: serpent
	err            error       // a bad option, reported by New
}

// Option configures a Proxy.
type Option func(*config)

// WithTimeout bounds every call whose context has no deadline. Default: no
// bound.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithConnectTimeout bounds dialing. Default 5s.
func WithConnectTimeout(d time.Duration) Option { return func(c *config) { c.connectTimeout = d } }

// WithTLS makes the proxy speak TLS with cfg.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithToken sends a shared secret with every call (see daemon.WithToken).
func WithToken(secret string) Option { return func(c *config) { c.token = secret } }

// WithMaxMessageSize bounds the size of a reply. Default gopyro.DefaultMaxMessageSize (64 MiB).
func WithMaxMessageSize(n int64) Option { return func(c *config) { c.maxMessage = n } }

// WithRetries retries a call up to n times when the connection fails
// (CodeCommunication), on a fresh connection. Only use it for idempotent
// methods: a call whose reply was lost may have run. Default 0.
func WithRetries(n int) Option { return func(c *config) { c.retries = n } }

// WithResolver sets how PYRONAME and PYROMETA URIs are resolved. Default:
// [NameServerResolver] with the name server named in the URI or found by
// the environment (GOPYRO_NS_HOST, GOPYRO_NS_PORT) or on localhost:9090.
func WithResolver(r Resolver) Option { return func(c *config) { c.resolver = r } }

// WithPyroSerializer chooses the serializer used with Python Pyro daemons:
// "serpent" (the default, which every Pyro daemon accepts), "marshal",
// "json" (which cannot carry bytes) or "msgpack" (where the daemon accepts
// it). It makes no difference to gopyro daemons.
func WithPyroSerializer(name string) Option {
	return func(c *config) {
		f, err := pyro.ParseFormat(name)
		if err != nil {
			c.err = fmt.Errorf("WithPyroSerializer: %w", err)
			return
		}
		c.pyroFormat = f
	}
}
