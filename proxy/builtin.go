package proxy

import (
	"context"
	"slices"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// Ping calls the built-in daemon object's ping: it proves the daemon
// serving this proxy's object is alive. It uses the proxy's connection.
func (p *Proxy) Ping(ctx context.Context) error {
	_, err := p.callDaemon(ctx, wire.MethodPing)
	return err
}

// callDaemon calls a method of the built-in daemon object of the proxy's
// daemon, on the proxy's connection.
func (p *Proxy) callDaemon(ctx context.Context, method string, args ...any) (*Results, error) {
	enc := wire.NewEncoder()
	defer enc.Release()
	if err := enc.EncodeArray(args...); err != nil {
		return nil, &gopyro.Error{Code: gopyro.CodeArgument, Op: "call " + method, URI: p.uri.String(), Err: err}
	}
	rep, err := p.do(ctx, request{object: gopyro.DaemonID, method: method, payload: enc.Raw(), args: args})
	if err != nil {
		return nil, err
	}
	return rep.results(p, method), nil
}

// Metadata asks the daemon for the object's metadata and caches it; [Proxy.Bind]
// then checks stub fields against it.
func (p *Proxy) Metadata(ctx context.Context) (gopyro.ObjectMetadata, error) {
	t, err := p.resolve(ctx)
	if err != nil {
		return gopyro.ObjectMetadata{}, err
	}
	res, err := p.callDaemon(ctx, wire.MethodGetMetadata, t.Object)
	if err != nil {
		return gopyro.ObjectMetadata{}, err
	}
	var md gopyro.ObjectMetadata
	if err := res.Decode(&md); err != nil {
		return gopyro.ObjectMetadata{}, err
	}
	p.mu.Lock()
	p.metadata = &md
	p.mu.Unlock()
	return md, nil
}

func (p *Proxy) knownMethod(name string) (known, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.metadata == nil {
		return false, true
	}
	// A daemon answers to a Go method's lowerCamel and snake_case names
	// too (who, get_id); a Python object's methods go by their Python
	// names (Process is process).
	return true, slices.ContainsFunc(p.metadata.Methods, func(m string) bool {
		return slices.Contains(pythonNames(m), name) || slices.Contains(pythonNames(name), m)
	})
}
