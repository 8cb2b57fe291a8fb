package proxy

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// Resolver turns a PYRONAME or PYROMETA URI into the PYRO URI of an object.
// *nameserver.Client satisfies it.
type Resolver interface {
	Resolve(ctx context.Context, u gopyro.URI) (gopyro.URI, error)
}

// maxPort is the largest TCP port.
const maxPort = 65535

// Environment variables that locate the name server.
const (
	EnvNSHost = "GOPYRO_NS_HOST"
	EnvNSPort = "GOPYRO_NS_PORT"
)

// NameServerResolver resolves through the name server named in the URI's
// location; without one, through GOPYRO_NS_HOST and GOPYRO_NS_PORT, and
// finally 127.0.0.1:9090. It speaks the name server's Lookup and YPLookup
// calls; a PYROMETA URI resolves to a random registration carrying all its
// tags. The zero value is ready to use.
type NameServerResolver struct {
	// Options configure the proxy used to reach the name server.
	Options []Option
}

// NSEnvError reports a GOPYRO_NS_PORT that is set but is not a port, so
// that a typo is an error instead of a silent fall back to the default
// name server.
func NSEnvError() error {
	v := os.Getenv(EnvNSPort)
	if v == "" {
		return nil
	}
	if p, err := strconv.Atoi(v); err != nil || p < 1 || p > maxPort {
		return &gopyro.Error{Code: gopyro.CodeInvalid, Op: "locate name server",
			Message: fmt.Sprintf("%s=%s is not a port (1 to %d)", EnvNSPort, gopyro.Clip(v), maxPort)}
	}
	return nil
}

// NameServerURI returns the name server URI for the location in u (which
// may have none), applying the environment and the defaults.
func NameServerURI(u gopyro.URI) gopyro.URI {
	ns := gopyro.URI{Scheme: gopyro.SchemePyro, Object: gopyro.NameServerID, Host: u.Host, Port: u.Port, Socket: u.Socket}
	if ns.Socket != "" {
		ns.Host, ns.Port = "", 0
		return ns
	}
	if ns.Host == "" {
		ns.Host = os.Getenv(EnvNSHost)
	}
	if ns.Host == "" {
		ns.Host = gopyro.DefaultHost
	}
	if ns.Port == 0 {
		if p, err := strconv.Atoi(os.Getenv(EnvNSPort)); err == nil && p > 0 && p <= maxPort {
			ns.Port = p
		}
	}
	if ns.Port == 0 {
		ns.Port = gopyro.NameServerPort
	}
	if h, _, err := net.SplitHostPort(ns.Host); err == nil { // tolerate host:port in GOPYRO_NS_HOST
		ns.Host = h
	}
	return ns
}

// Resolve implements [Resolver].
func (r *NameServerResolver) Resolve(ctx context.Context, u gopyro.URI) (gopyro.URI, error) {
	switch u.Scheme {
	case gopyro.SchemePyro:
		return u, nil
	case gopyro.SchemePyroName, gopyro.SchemePyroMeta:
	default:
		return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "resolve", URI: u.String(), Message: "unknown scheme"}
	}
	if u.Port == 0 && u.Socket == "" {
		if err := NSEnvError(); err != nil {
			return gopyro.URI{}, err
		}
	}
	ns, err := NewURI(NameServerURI(u), r.Options...)
	if err != nil {
		return gopyro.URI{}, err
	}
	defer ns.Close()
	var s string
	if u.Scheme == gopyro.SchemePyroName {
		s, err = Call[string](ctx, ns, wire.NSLookup, u.Object)
	} else {
		var found map[string]string
		found, err = Call[map[string]string](ctx, ns, wire.NSYPLookup, u.Tags, []string(nil))
		if err == nil {
			if len(found) == 0 {
				return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeNotFound, Op: "resolve", URI: u.String(),
					Message: "no registration carries all the tags"}
			}
			s = wire.ChooseOne(slices.Collect(maps.Values(found)))
		}
	}
	if err != nil {
		return gopyro.URI{}, err
	}
	return gopyro.Parse(s)
}
