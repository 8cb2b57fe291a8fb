package cli

import (
	"fmt"
	"net"
	"strconv"

	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/echoserver"
	"github.com/spf13/cobra"
)

func echoCmd(e *env) *cobra.Command {
	var host string
	var port int
	var daemonOpts func() []daemon.Option
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "Serve the echo test object (" + echoserver.ID + ")",
		Long: `Serve the echo test object, like Pyro's echo server, until interrupted.

It prints its URI on the first line of stdout. Methods: echo(value) returns
its argument; error() always fails; slow(seconds) waits, then answers;
oneway_echo(value) is oneway.

Example:
  gopyro echo --port 0
  gopyro call PYRO:test.echoserver@127.0.0.1:PORT echo '"hi"'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return err
			}
			d, err := daemon.New(append(daemonOpts(), daemon.WithLogger(e.log))...)
			if err != nil {
				ln.Close()
				return err
			}
			errc := make(chan error, 1)
			go func() { errc <- d.Serve(cmd.Context(), ln) }()
			<-d.Ready()
			uri, err := d.Register(&echoserver.Server{}, daemon.WithID(echoserver.ID), daemon.WithOneway("OnewayEcho"))
			if err != nil {
				d.Close()
				<-errc
				return err
			}
			fmt.Fprintln(e.stdout, uri)
			return <-errc
		},
	}
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "address to bind")
	cmd.Flags().IntVarP(&port, "port", "p", 0, "port to bind (0: any free port)")
	daemonOpts = daemonFlags(cmd.Flags())
	return cmd
}
