// Package shop is the "shop" scenario from the Pyro cookbook: a server
// publishes an online shop, and customers log on, deposit money, buy and
// log out; the shop keeps their accounts.
//
// Run it as three processes:
//
//	go run ./cmd/gopyro ns --memory
//	go run ./examples/shop/server
//	go run ./examples/shop/client
//
// or as one: go run ./cmd/gopyro demo shop.
package shop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/proxy"
)

// Name is the shop's name in the name server.
const Name = "example.shop.Shop"

// The shop's errors. They keep their remote type across the wire, so a
// client tells them apart with errors.Is.
var (
	ErrUnknownAccount    = gopyro.NewError(gopyro.CodeNotFound, "shop.UnknownAccount", "unknown account")
	ErrInsufficientFunds = gopyro.NewError(gopyro.CodeRemote, "shop.InsufficientFunds", "insufficient funds")
	ErrBadAmount         = gopyro.NewError(gopyro.CodeArgument, "shop.BadAmount", "amount must be positive")
)

// Shop is the remote object. It is safe for concurrent customers.
type Shop struct {
	name string
	out  io.Writer

	mu       sync.Mutex
	accounts map[string]float64
	loggedOn map[string]bool
}

// NewShop returns an empty shop called name that logs to out.
func NewShop(name string, out io.Writer) *Shop {
	return &Shop{name: name, out: out, accounts: map[string]float64{}, loggedOn: map[string]bool{}}
}

// Name returns the shop's name.
func (s *Shop) Name() string { return s.name }

// LogOn logs customer on, opening an account the first time.
func (s *Shop) LogOn(customer string) error {
	if strings.TrimSpace(customer) == "" {
		return gopyro.NewError(gopyro.CodeArgument, "shop.BadName", "a customer needs a name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[customer]; !ok {
		s.accounts[customer] = 0
	}
	s.loggedOn[customer] = true
	return nil
}

// LogOut logs customer off; the account stays.
func (s *Shop) LogOut(customer string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[customer]; !ok {
		return ErrUnknownAccount
	}
	delete(s.loggedOn, customer)
	fmt.Fprintf(s.out, "logout %s\n", customer)
	return nil
}

// Deposit adds amount to customer's account.
func (s *Shop) Deposit(customer string, amount float64) error {
	if !(amount > 0) {
		return ErrBadAmount
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[customer]; !ok {
		return ErrUnknownAccount
	}
	s.accounts[customer] += amount
	return nil
}

// Balance returns customer's balance.
func (s *Shop) Balance(customer string) (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.accounts[customer]
	if !ok {
		return 0, ErrUnknownAccount
	}
	return b, nil
}

// Buy takes price from customer's account.
func (s *Shop) Buy(customer string, price float64) error {
	if !(price > 0) {
		return ErrBadAmount
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.accounts[customer]
	switch {
	case !ok:
		return ErrUnknownAccount
	case b < price:
		// A fresh error with the sentinel's code and type: errors.Is still
		// matches it, and the message says what happened.
		return gopyro.NewError(ErrInsufficientFunds.Code, ErrInsufficientFunds.RemoteType,
			fmt.Sprintf("insufficient funds: %s has %.2f, the price is %.2f", customer, b, price))
	}
	s.accounts[customer] = b - price
	return nil
}

// AllAccounts returns every customer's balance.
func (s *Shop) AllAccounts() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.accounts)
}

// Server is a running shop server.
type Server struct {
	d    *daemon.Daemon
	ns   *nameserver.Client
	shop *Shop
	errc chan error
}

// Start serves a new shop "BuyAnythingOnline" on ln, publishes it as Name
// with ns and prints the names registered under "example.shop.". It serves
// until ctx is done; [Server.Wait] then removes the name.
func Start(ctx context.Context, ln net.Listener, ns *nameserver.Client, stdout io.Writer) (*Server, error) {
	d, err := daemon.New()
	if err != nil {
		return nil, err
	}
	s := &Server{d: d, ns: ns, shop: NewShop("BuyAnythingOnline", stdout), errc: make(chan error, 1)}
	go func() { s.errc <- d.Serve(ctx, ln) }()
	select {
	case <-d.Ready():
	case err := <-s.errc:
		return nil, err
	}
	if _, err := ns.Publish(ctx, d, Name, s.shop); err != nil {
		_ = d.Close()
		return nil, errors.Join(err, <-s.errc)
	}
	entries, err := ns.List(ctx, "example.shop.")
	if err != nil {
		_ = d.Close()
		return nil, errors.Join(err, <-s.errc)
	}
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "'%s': '%s'", e.Name, e.URI)
	}
	fmt.Fprintf(stdout, "Registered names with prefix example.shop.: {%s}\n", b.String())
	return s, nil
}

// Shop returns the served shop.
func (s *Server) Shop() *Shop { return s.shop }

// Wait serves until the context given to Start is done, then removes the
// name from the name server.
func (s *Server) Wait() error {
	err := <-s.errc
	_, rerr := s.ns.Remove(context.Background(), Name)
	return errors.Join(err, rerr)
}

// Stub is the client's view of a shop: [proxy.Proxy.Bind] fills it.
type Stub struct {
	Name        func(ctx context.Context) (string, error)
	LogOn       func(ctx context.Context, customer string) error
	LogOut      func(ctx context.Context, customer string) error
	Deposit     func(ctx context.Context, customer string, amount float64) error
	Balance     func(ctx context.Context, customer string) (float64, error)
	Buy         func(ctx context.Context, customer string, price float64) error
	AllAccounts func(ctx context.Context) (map[string]float64, error)
}

// Dial returns a stub for the shop registered as Name with ns. Close the
// proxy when done.
func Dial(ns *nameserver.Client) (*Stub, *proxy.Proxy, error) {
	p, err := proxy.New("PYRONAME:"+Name, proxy.WithResolver(ns))
	if err != nil {
		return nil, nil, err
	}
	var s Stub
	if err := p.Bind(&s); err != nil {
		p.Close()
		return nil, nil, err
	}
	return &s, p, nil
}

// Client runs the cookbook's session: Rashmi and Meeta go shopping, then
// the client prints every account.
func Client(ctx context.Context, ns *nameserver.Client, stdout io.Writer) error {
	shop, p, err := Dial(ns)
	if err != nil {
		return err
	}
	defer p.Close()
	name, err := shop.Name(ctx)
	if err != nil {
		return err
	}
	c := customer{ctx: ctx, shop: shop, out: stdout}
	c.session("Rashmi", name, func() {
		c.deposit(100)
		c.buy("a book", 37)
	})
	fmt.Fprintln(stdout)
	c.session("Meeta", name, func() {
		c.deposit(50)
		c.deposit(50)
	})
	if c.err != nil {
		return c.err
	}
	accounts, err := shop.AllAccounts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nThe accounts in the %s:\n", name)
	for _, who := range slices.Sorted(maps.Keys(accounts)) {
		fmt.Fprintf(stdout, " %s : %.2f\n", who, accounts[who])
	}
	return nil
}

// customer runs one customer's steps, stopping at the first error.
type customer struct {
	ctx  context.Context
	shop *Stub
	out  io.Writer
	name string
	err  error
}

func (c *customer) session(name, shopName string, shopping func()) {
	if c.err != nil {
		return
	}
	c.name = name
	fmt.Fprintf(c.out, "*** %s is doing shopping with %s:\n", name, shopName)
	fmt.Fprintln(c.out, "Log on")
	c.err = c.shop.LogOn(c.ctx, name)
	shopping()
	if c.err == nil {
		fmt.Fprintln(c.out, "Log out")
		c.err = c.shop.LogOut(c.ctx, name)
	}
}

func (c *customer) deposit(amount float64) {
	if c.err != nil {
		return
	}
	fmt.Fprintf(c.out, "Deposit money %g\n", amount)
	if c.err = c.shop.Deposit(c.ctx, c.name, amount); c.err != nil {
		return
	}
	var b float64
	b, c.err = c.shop.Balance(c.ctx, c.name)
	if c.err == nil {
		fmt.Fprintf(c.out, "balance=%.2f\n", b)
	}
}

func (c *customer) buy(item string, price float64) {
	if c.err != nil {
		return
	}
	fmt.Fprintf(c.out, "%s is buying %s for %g$\n", c.name, item, price)
	c.err = c.shop.Buy(c.ctx, c.name, price)
}
