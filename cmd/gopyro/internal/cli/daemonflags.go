package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/proxy"
)

// daemonFlags adds the flags every server shares to f and returns a
// function giving the daemon options they set.
func daemonFlags(f *pflag.FlagSet) func() []daemon.Option {
	var handshake, frame, idle, write time.Duration
	var maxConns, maxInFlight, connInFlight int
	var budget int64
	var dropOneway bool
	f.IntVar(&maxConns, "max-conns", daemon.DefaultMaxConns, "most client connections open at once; more are refused as busy")
	f.IntVar(&maxInFlight, "max-in-flight", daemon.DefaultMaxInFlight, "most calls running at once; more fail as busy (oneway calls wait)")
	f.IntVar(&connInFlight, "max-conn-in-flight", daemon.DefaultMaxConnInFlight,
		"most requests of one connection read and not answered; then it is not read (back-pressure)")
	f.Int64Var(&budget, "max-bytes-in-flight", daemon.DefaultMaxBytesInFlight,
		"memory budget in bytes for requests and replies in flight; reading waits while it is spent")
	f.BoolVar(&dropOneway, "drop-oneway", false, "drop oneway calls over --max-in-flight instead of waiting for a slot")
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
			daemon.WithIdleTimeout(idle), daemon.WithWriteTimeout(write),
			daemon.WithMaxConns(maxConns), daemon.WithMaxInFlight(maxInFlight), daemon.WithMaxConnInFlight(connInFlight),
			daemon.WithMaxBytesInFlight(budget), daemon.WithDropOneway(dropOneway)}
	}
}

// envToken is the environment variable every --token defaults to.
const envToken = "GOPYRO_TOKEN"

// tokenFlag defines --token, defaulting to $GOPYRO_TOKEN. The help shows
// the variable's name, never its value.
func tokenFlag(f *pflag.FlagSet, p *string, usage string) {
	f.StringVar(p, "token", "", usage+" (default: $"+envToken+")")
	*p = os.Getenv(envToken)
}

// defaultGrace is how long a server stopped by a signal waits for the
// calls in flight.
const defaultGrace = 10 * time.Second

// graceFlag defines --grace.
func graceFlag(f *pflag.FlagSet, p *time.Duration) {
	f.DurationVar(p, "grace", defaultGrace, "on SIGINT/SIGTERM, how long the calls in flight get to finish before the connections are closed")
}

// server is what startServing runs: a daemon or a name server.
type server interface {
	Serve(ctx context.Context, ln net.Listener) error
	Shutdown(ctx context.Context) error
	Ready() <-chan struct{}
}

// startServing serves s on ln and returns once it is ready. wait returns
// when s stops by itself, or when ctx is done: s then drains, the calls in
// flight getting up to grace to finish (Shutdown), before it closes.
func startServing(ctx context.Context, s server, ln net.Listener, grace time.Duration) (wait func() error, err error) {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(context.WithoutCancel(ctx), ln) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		return nil, err
	}
	return func() error {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		serr := s.Shutdown(sctx)
		err := <-errc
		if serr != nil {
			return fmt.Errorf("calls were still running after --grace %v and were cut off: %w", grace, serr)
		}
		return err
	}, nil
}

// listen binds a server's --host and --port: a TCP address, or with a
// host of "./u:PATH" the unix socket PATH (the port is then unused). A
// socket file left behind by a server that died is replaced; one that a
// live server answers on is an error.
func listen(host string, port int) (net.Listener, error) {
	path, ok := strings.CutPrefix(host, "./u:")
	if !ok {
		return net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	if path == "" {
		return nil, usageError{fmt.Errorf("--host ./u: needs a socket path (./u:/run/gopyro.sock)")}
	}
	ln, err := net.Listen("unix", path)
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		return ln, err
	}
	if c, derr := net.DialTimeout("unix", path, time.Second); derr == nil {
		c.Close()
		return nil, fmt.Errorf("a server is already listening on %s", path)
	}
	if fi, serr := os.Lstat(path); serr != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, err // not a socket: leave it alone
	}
	if rerr := os.Remove(path); rerr != nil {
		return nil, err
	}
	return net.Listen("unix", path)
}

// registerName registers uri as name with the name server at nsAddr (the
// environment's or the default one when empty), presenting token, and
// returns the function that removes the name again and closes the client.
func registerName(ctx context.Context, nsAddr, token, name string, uri gopyro.URI) (unregister func(), err error) {
	opts := []nameserver.LocateOption{nameserver.WithProxyOptions(proxy.WithToken(token))}
	if nsAddr != "" {
		opts = append(opts, nameserver.At(nsAddr))
	}
	ns, err := nameserver.Locate(ctx, opts...)
	if err == nil {
		if err = ns.Register(ctx, name, uri); err != nil {
			ns.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("registering %s with the name server: %w", name, err)
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), daemon.DefaultWriteTimeout)
		defer cancel()
		_, _ = ns.Remove(rctx, name)
		ns.Close()
	}, nil
}
