// Package greeting is gopyro's first example, after Pyro's "greeting"
// warm-up: a server publishes a GreetingMaker as "example.greeting" in the
// name server, and a client looks it up and calls it.
//
// Run it as three processes:
//
//	go run ./cmd/gopyro ns --memory
//	go run ./examples/greeting/server
//	go run ./examples/greeting/client
//
// or as one: go run ./cmd/gopyro demo greeting --name Ada.
package greeting

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/proxy"
)

// Name is the name the server registers in the name server.
const Name = "example.greeting"

// ErrNoName is returned to a caller that sends an empty name. Its remote type
// survives the trip, so errors.Is(err, ErrNoName) works at the client.
var ErrNoName = gopyro.NewError(gopyro.CodeArgument, "greeting.NoName", "tell me your name first")

// GreetingMaker is the remote object: an ordinary Go value.
type GreetingMaker struct{}

// WelcomeMessage greets name. Python clients call it as welcomeMessage,
// the cookbook's name.
func (GreetingMaker) WelcomeMessage(name string) (string, error) {
	if strings.TrimSpace(name) == "" {
		return "", ErrNoName
	}
	return "Hi welcome " + name, nil
}

// Server is a running greeting server.
type Server struct {
	d    *daemon.Daemon
	ns   *nameserver.Client
	uri  gopyro.URI
	errc chan error
}

// Start serves a GreetingMaker on ln, publishes it as Name with ns, and
// prints "Ready. Object uri = PYRO:..." to stdout. It serves until ctx is
// done; [Server.Wait] then removes the name.
func Start(ctx context.Context, ln net.Listener, ns *nameserver.Client, stdout io.Writer) (*Server, error) {
	d, err := daemon.New()
	if err != nil {
		return nil, err
	}
	s := &Server{d: d, ns: ns, errc: make(chan error, 1)}
	go func() { s.errc <- d.Serve(ctx, ln) }()
	select {
	case <-d.Ready():
	case err := <-s.errc:
		return nil, err
	}
	s.uri, err = ns.Publish(ctx, d, Name, GreetingMaker{})
	if err != nil {
		_ = d.Close()
		return nil, errors.Join(err, <-s.errc)
	}
	fmt.Fprintf(stdout, "Ready. Object uri = %s\n", s.uri)
	return s, nil
}

// URI returns the object's URI.
func (s *Server) URI() gopyro.URI { return s.uri }

// Wait serves until the context given to Start is done, then removes the
// name from the name server.
func (s *Server) Wait() error {
	err := <-s.errc
	_, rerr := s.ns.Remove(context.Background(), Name)
	return errors.Join(err, rerr)
}

// Client asks for a name on stdin and prints the greeting the remote
// GreetingMaker returns.
func Client(ctx context.Context, ns *nameserver.Client, stdin io.Reader, stdout io.Writer) error {
	fmt.Fprint(stdout, "What is your name? ")
	name, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && name != "") {
		return fmt.Errorf("reading your name: %w", err)
	}
	name = strings.TrimSpace(name)

	// The resolver makes "PYRONAME:" URIs use this name server.
	p, err := proxy.New("PYRONAME:"+Name, proxy.WithResolver(ns))
	if err != nil {
		return err
	}
	defer p.Close()
	var greeter struct {
		WelcomeMessage func(ctx context.Context, name string) (string, error)
	}
	if err := p.Bind(&greeter); err != nil {
		return err
	}
	msg, err := greeter.WelcomeMessage(ctx, name)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, msg)
	return err
}
