package cli

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/gopyro/gopyro/daemon"
)

// daemonFlags adds the flags every server shares to f and returns a
// function giving the daemon options they set.
func daemonFlags(f *pflag.FlagSet) func() []daemon.Option {
	var handshake, frame, idle, write time.Duration
	f.DurationVar(&handshake, "handshake-timeout", daemon.DefaultHandshakeTimeout,
		"bound on a new connection's TLS handshake and first request (negative: none)")
	f.DurationVar(&frame, "frame-timeout", daemon.DefaultFrameTimeout,
		"bound on a request's arrival once it has started (negative: none)")
	f.DurationVar(&idle, "idle-timeout", daemon.DefaultIdleTimeout,
		"close a connection with no request for this long and none running (negative: never)")
	f.DurationVar(&write, "write-timeout", daemon.DefaultWriteTimeout,
		"disconnect a client that does not take a reply for this long (negative: never)")
	return func() []daemon.Option {
		return []daemon.Option{daemon.WithHandshakeTimeout(handshake), daemon.WithFrameTimeout(frame),
			daemon.WithIdleTimeout(idle), daemon.WithWriteTimeout(write)}
	}
}
