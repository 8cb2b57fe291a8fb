package proxy

import (
	"context"
	"errors"
	"strings"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

func (p *Proxy) remoteError(ge *gopyro.Error, op string, t gopyro.URI) *gopyro.Error {
	ge.Op, ge.URI = op, p.where(t)
	if ge.Code == gopyro.CodeTimeout {
		// The deadline ran out on the daemon's side first: report it
		// as the caller's own deadline, whichever side noticed.
		ge.Err = context.DeadlineExceeded
	}
	if ge.Code == gopyro.CodeNotFound && ge.Remote && p.uri.Scheme != gopyro.SchemePyro {
		// The name may now point at another object: look it up again.
		p.mu.Lock()
		p.forgetTargetLocked()
		p.mu.Unlock()
	}
	return ge
}

func (p *Proxy) transportError(cl *wire.Client, op string, t gopyro.URI, err error) error {
	ge := &gopyro.Error{Op: op, URI: p.where(t), Err: err}
	var se wire.ServiceError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		ge.Code = gopyro.CodeTimeout
		ge.Message = "no reply before the deadline"
	case errors.Is(err, context.Canceled):
		ge.Code = gopyro.CodeCanceled
		ge.Message = "call canceled"
	case errors.As(err, &se):
		ge.Code = gopyro.CodeProtocol
		ge.Remote = true
		ge.Err = nil
		if msg, ok := strings.CutPrefix(se.Error(), wire.OversizePrefix); ok {
			ge.Message = "request too large: " + msg
		} else if msg, ok := strings.CutPrefix(se.Error(), wire.BusyPrefix); ok {
			ge.Code = gopyro.CodeBusy
			ge.Message = msg
		} else {
			ge.Message = "transport error from the peer: " + se.Error()
		}
		// The daemon drops the connection after such an error.
		p.dropConn(cl)
	default:
		ge.Code = gopyro.CodeCommunication
		ge.Message = "connection failed"
		p.dropConn(cl)
	}
	return ge
}

// where names the object in errors: t, and for a PYRONAME or PYROMETA
// proxy also the name it was resolved from, so that a dead registration
// says which name pointed where.
func (p *Proxy) where(t gopyro.URI) string {
	if p.uri.Scheme == gopyro.SchemePyro || t.IsZero() {
		return t.String()
	}
	return p.uri.String() + " (resolved to " + t.String() + ")"
}
