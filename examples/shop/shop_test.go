package shop_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/examples/shop"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver"
	"github.com/gopyro/gopyro/nameserver/nstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wantClient = `*** Rashmi is doing shopping with BuyAnythingOnline:
Log on
Deposit money 100
balance=100.00
Rashmi is buying a book for 37$
Log out

*** Meeta is doing shopping with BuyAnythingOnline:
Log on
Deposit money 50
balance=50.00
Deposit money 50
balance=100.00
Log out

The accounts in the BuyAnythingOnline:
 Meeta : 100.00
 Rashmi : 63.00
`

// start serves a shop until the test ends; it returns the server's output.
func start(t *testing.T, ns *nameserver.Client) (*shop.Server, *testutil.Lines) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := &testutil.Lines{}
	s, err := shop.Start(ctx, ln, ns, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Error(err)
		}
	})
	return s, out
}

func TestShop(t *testing.T) {
	ns := nstest.Start(t)
	_, out := start(t, ns)
	uri, err := ns.Lookup(t.Context(), shop.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.All(), []string{"Registered names with prefix example.shop.: {'example.shop.Shop': '" + uri.String() + "'}"}; !slices.Equal(got, want) {
		t.Fatalf("server printed %q, want %q", got, want)
	}
	var client strings.Builder
	if err := shop.Client(t.Context(), ns, &client); err != nil {
		t.Fatal(err)
	}
	if got := client.String(); got != wantClient {
		t.Fatalf("client printed:\n%s\nwant:\n%s", got, wantClient)
	}
	if got, want := out.All()[1:], []string{"logout Rashmi", "logout Meeta"}; !slices.Equal(got, want) {
		t.Fatalf("server printed %q, want %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	ns := nstest.Start(t)
	start(t, ns)
	s, p, err := shop.Dial(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := t.Context()

	err = s.Deposit(ctx, "Nobody", 10)
	var ge *gopyro.Error
	if !errors.Is(err, shop.ErrUnknownAccount) || !errors.As(err, &ge) || !ge.Remote ||
		ge.RemoteType != "shop.UnknownAccount" || ge.Message != "unknown account" {
		t.Fatalf("deposit to an unknown account: %#v", err)
	}
	if errors.Is(err, shop.ErrInsufficientFunds) {
		t.Fatal("unknown account matches ErrInsufficientFunds")
	}
	if err := s.LogOn(ctx, "Ann"); err != nil {
		t.Fatal(err)
	}
	err = s.Buy(ctx, "Ann", 5000)
	if !errors.Is(err, shop.ErrInsufficientFunds) || !strings.Contains(err.Error(), "Ann has 0.00, the price is 5000.00") {
		t.Fatalf("buy without money: %v", err)
	}
	if err := s.Deposit(ctx, "Ann", -5); !errors.Is(err, shop.ErrBadAmount) || !errors.Is(err, gopyro.ErrArgument) {
		t.Fatalf("negative deposit: %v", err)
	}
	if err := s.LogOn(ctx, " "); !errors.Is(err, gopyro.ErrArgument) {
		t.Fatalf("empty name: %v", err)
	}
	// Nothing was lost on the way.
	if b, err := s.Balance(ctx, "Ann"); err != nil || b != 0 {
		t.Fatalf("balance = %v, %v", b, err)
	}
}

// TestConcurrentCustomers: 100 goroutines, each on its own connection,
// deposit at once; no deposit is lost.
func TestConcurrentCustomers(t *testing.T) {
	ns := nstest.Start(t)
	srv, _ := start(t, ns)
	ctx := t.Context()
	for _, who := range []string{"Meeta", "Rashmi"} {
		if err := srv.Shop().LogOn(who); err != nil {
			t.Fatal(err)
		}
	}
	const workers, each = 100, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			s, p, err := shop.Dial(ns)
			if err != nil {
				errs <- err
				return
			}
			defer p.Close()
			for range each {
				if err := s.Deposit(ctx, "Meeta", 1); err != nil {
					errs <- err
					return
				}
				if err := s.Deposit(ctx, "Rashmi", 0.5); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := srv.Shop().AllAccounts()
	if got["Meeta"] != workers*each || got["Rashmi"] != workers*each/2 {
		t.Fatalf("accounts = %v, want Meeta %d and Rashmi %d", got, workers*each, workers*each/2)
	}
}
