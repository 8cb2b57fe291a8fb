// Package chain is Pyro's "chain" example: three servers form a ring, each
// knowing only the name of the next. A message sent to the first travels
// round the ring until it comes back to where it started.
//
// Run it as five processes:
//
//	go run ./cmd/gopyro ns --memory
//	go run ./examples/chain/server -this 1 -next 2
//	go run ./examples/chain/server -this 2 -next 3
//	go run ./examples/chain/server -this 3 -next 1
//	go run ./examples/chain/client
//
// or as one: go run ./cmd/gopyro demo chain.
//
// When the message gets back to server 1, server 1 is still waiting for its
// own call to server 2 to return: the daemon serves the closing call while
// that call is in flight, so the ring does not deadlock.
package chain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/proxy"
)

// Prefix is the name prefix of the chain's objects: server N registers
// Prefix+N.
const Prefix = "example.chain."

// Chain is one link of the ring.
type Chain struct {
	name, next string
	ns         proxy.Resolver
	out        io.Writer

	mu   sync.Mutex
	link *proxy.Proxy // to the next link, made on first use
}

// NewChain returns the link called name whose next link is registered as
// Prefix+next with the name server ns. It prints its progress to out.
func NewChain(name, next string, ns proxy.Resolver, out io.Writer) *Chain {
	return &Chain{name: name, next: next, ns: ns, out: out}
}

// Process passes message on to the next link, adding this link's name,
// unless the message has been here before: then the chain is closed.
func (c *Chain) Process(ctx context.Context, message []string) ([]string, error) {
	if slices.Contains(message, c.name) {
		fmt.Fprintf(c.out, "Back at %s; the chain is closed!\n", c.name)
		return []string{"complete at " + c.name}, nil
	}
	next, err := c.nextLink()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.out, "%s forwarding the message to the object %s\n", c.name, c.next)
	result, err := proxy.Call[[]string](ctx, next, "Process", append(message, c.name))
	if err != nil {
		return nil, err
	}
	return append([]string{"passed on from " + c.name}, result...), nil
}

func (c *Chain) nextLink() (*proxy.Proxy, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link == nil {
		p, err := proxy.New("PYRONAME:"+Prefix+c.next, proxy.WithResolver(c.ns))
		if err != nil {
			return nil, err
		}
		c.link = p
	}
	return c.link, nil
}

// Close closes the link's proxy to the next link.
func (c *Chain) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link == nil {
		return nil
	}
	return c.link.Close()
}

// Server is a running chain server.
type Server struct {
	d     *daemon.Daemon
	ns    *nameserver.Client
	chain *Chain
	name  string
	uri   gopyro.URI
	errc  chan error
}

// Start serves the link this (forwarding to next) on ln, publishes it as
// Prefix+this with ns and prints "server_<this> started". It serves until
// ctx is done; [Server.Wait] then removes the name.
func Start(ctx context.Context, ln net.Listener, ns *nameserver.Client, this, next string, stdout io.Writer) (*Server, error) {
	d, err := daemon.New()
	if err != nil {
		return nil, err
	}
	s := &Server{d: d, ns: ns, chain: NewChain(this, next, ns, stdout), name: Prefix + this, errc: make(chan error, 1)}
	go func() { s.errc <- d.Serve(ctx, ln) }()
	select {
	case <-d.Ready():
	case err := <-s.errc:
		return nil, err
	}
	s.uri, err = ns.Publish(ctx, d, s.name, s.chain)
	if err != nil {
		_ = d.Close()
		return nil, errors.Join(err, <-s.errc)
	}
	fmt.Fprintf(stdout, "server_%s started\n", this)
	return s, nil
}

// URI returns the link's URI.
func (s *Server) URI() gopyro.URI { return s.uri }

// Wait serves until the context given to Start is done, then removes the
// name from the name server.
func (s *Server) Wait() error {
	err := <-s.errc
	_, rerr := s.ns.Remove(context.Background(), s.name)
	return errors.Join(err, rerr, s.chain.Close())
}

// Client sends ["hello"] round the ring from link 1 and prints
// "Result=[...]" the way Python prints a list.
func Client(ctx context.Context, ns *nameserver.Client, stdout io.Writer) error {
	p, err := proxy.New("PYRONAME:"+Prefix+"1", proxy.WithResolver(ns))
	if err != nil {
		return err
	}
	defer p.Close()
	result, err := proxy.Call[[]string](ctx, p, "Process", []string{"hello"})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "Result=%s\n", PyList(result))
	return err
}

// PyList formats ss as Python's repr of a list of str.
func PyList(ss []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteString(", ")
		}
		// Like Python: single quotes, unless the string holds a single
		// quote and no double quote.
		q := '\''
		if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
			q = '"'
		}
		b.WriteRune(q)
		for _, r := range s {
			switch {
			case r == '\\' || r == q:
				b.WriteByte('\\')
				b.WriteRune(r)
			case r == '\n':
				b.WriteString(`\n`)
			case r == '\t':
				b.WriteString(`\t`)
			case r == '\r':
				b.WriteString(`\r`)
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&b, `\x%02x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteRune(q)
	}
	b.WriteByte(']')
	return b.String()
}
