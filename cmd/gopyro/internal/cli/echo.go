package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/echoserver"
	"github.com/spf13/cobra"
)

func echoCmd(e *env) *cobra.Command {
	var host, nsAddr, token, name string
	var port int
	var verbose, naming bool
	var grace time.Duration
	var daemonOpts func() []daemon.Option
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "Serve the echo test object (" + echoserver.ID + "), like Pyro's echo server",
		Long: `Serve the echo test object until interrupted or until a client calls its
shutdown method. It mirrors Pyro's own echo server (Pyro4.test.echoserver,
Pyro5.utils.echoserver): the same object id, methods and behaviour, for gopyro
clients and Python Pyro4/Pyro5 clients alike.

It prints its URI on the first line of stdout. Methods:
  echo(value)        returns its argument
  error()            fails: a ValueError for Python ("expected error from
                     echoserver error() method")
  error_with_text()  fails: a ValueError "the message of the error"
  slow([seconds])    waits 5 s ("Finally, an answer!"), or the seconds given
  oneway_echo(value) oneway: the caller does not wait
  oneway_slow()      oneway; waits 5 s
  generator()        a stream of "one", "two", "three" (a Python generator)
  nan(), inf()       the floats
  shutdown()         stops the server
The verbose attribute (Python: echo.verbose = True; or --verbose) prints
each call.

With --naming it registers itself in the name server as ` + echoserver.ID + `
(removed again on exit), as Pyro's -n does.`,
		Example: `  gopyro echo
  gopyro call PYRO:test.echoserver@127.0.0.1:PORT echo '"hi"'
  gopyro echo --naming --ns 127.0.0.1:9090 --verbose
  python3 -c 'import Pyro4; print(Pyro4.Proxy("PYRONAME:test.echoserver").echo("hi"))'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			ln, err := listen(host, port)
			if err != nil {
				return err
			}
			opts := daemonOpts()
			if token != "" {
				opts = append(opts, daemon.WithToken(token))
			}
			d, err := daemon.New(append(opts, daemon.WithLogger(e.log))...)
			if err != nil {
				ln.Close()
				return err
			}
			wait, err := startServing(ctx, d, ln, grace)
			if err != nil {
				return err
			}
			srv := &echoserver.Server{Out: e.stdout}
			srv.SetVerbose(verbose)
			uri, err := d.Register(srv, daemon.WithID(echoserver.ID), daemon.WithOneway("OnewayEcho", "OnewaySlow"))
			if err != nil {
				stop()
				return errors.Join(err, wait())
			}
			if cmd.Flags().Changed("name") {
				naming = true
			}
			if naming {
				unregister, err := registerName(ctx, nsAddr, token, name, uri)
				if err != nil {
					stop()
					return errors.Join(err, wait())
				}
				defer unregister()
			}
			fmt.Fprintln(e.stdout, uri)
			go func() {
				select {
				case <-srv.Done(): // a client called shutdown
					stop()
				case <-ctx.Done():
				}
			}()
			return wait()
		},
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", "127.0.0.1", "address to bind, or ./u:PATH for a unix socket")
	f.IntVarP(&port, "port", "p", 0, "port to bind (0: any free port)")
	f.BoolVarP(&verbose, "verbose", "v", false, "print each call (Python clients set the verbose attribute)")
	f.BoolVarP(&naming, "naming", "n", false, "register as "+echoserver.ID+" (or --name) in the name server, removed on exit")
	f.StringVar(&name, "name", echoserver.ID, "the name to register under (implies --naming)")
	f.StringVar(&nsAddr, "ns", "", "name server HOST:PORT for --naming (default: $GOPYRO_NS_HOST/$GOPYRO_NS_PORT, then 127.0.0.1:9090)")
	tokenFlag(f, &token, "shared secret callers must present (Pyro4's HMAC key, Pyro5's handshake); also for the name server")
	graceFlag(f, &grace)
	daemonOpts = daemonFlags(cmd.Flags())
	return cmd
}
