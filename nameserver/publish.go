package nameserver

import (
	"context"
	"errors"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
)

// Publish registers obj with the daemon d and maps name to its URI in the
// name server: Pyro's serveSimple with ns=True, for one object. d must know
// its address (it is serving, see [daemon.Daemon.Ready], or was given an
// advertised address). When the name server refuses the name (a safe
// registration of a taken name, a name server that cannot be reached),
// the object is unregistered from d again and the error returned.
//
// Remove the name when the object goes away:
//
//	defer ns.Remove(context.WithoutCancel(ctx), name, "", "")
func (c *Client) Publish(ctx context.Context, d *daemon.Daemon, name string, obj any, opts ...RegisterOption) (gopyro.URI, error) {
	if err := gopyro.ValidateName(name); err != nil {
		return gopyro.URI{}, err
	}
	uri, err := d.Register(obj)
	if err != nil {
		if uri.Object != "" {
			_ = d.Unregister(uri.Object)
		}
		return gopyro.URI{}, err
	}
	if err := c.Register(ctx, name, uri, opts...); err != nil {
		return gopyro.URI{}, errors.Join(err, d.Unregister(uri.Object))
	}
	return uri, nil
}
