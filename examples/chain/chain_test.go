package chain_test

import (
	"context"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gopyro/gopyro/examples/chain"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/nameserver/nstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

const wantResult = "Result=['passed on from 1', 'passed on from 2', 'passed on from 3', 'complete at 1']"

// wantServer is what each server prints, in order.
var wantServer = map[string][]string{
	"1": {"server_1 started", "1 forwarding the message to the object 2", "Back at 1; the chain is closed!"},
	"2": {"server_2 started", "2 forwarding the message to the object 3"},
	"3": {"server_3 started", "3 forwarding the message to the object 1"},
}

var ring = [][2]string{{"1", "2"}, {"2", "3"}, {"3", "1"}}

func TestChain(t *testing.T) {
	ns := nstest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	outs := map[string]*testutil.Lines{}
	var servers []*chain.Server
	for _, link := range ring {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		outs[link[0]] = &testutil.Lines{}
		s, err := chain.Start(ctx, ln, ns, link[0], link[1], outs[link[0]])
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
	}
	var client strings.Builder
	if err := chain.Client(t.Context(), ns, &client); err != nil {
		t.Fatal(err)
	}
	if got := client.String(); got != wantResult+"\n" {
		t.Fatalf("client printed %q, want %q", got, wantResult)
	}
	cancel()
	for _, s := range servers {
		if err := s.Wait(); err != nil {
			t.Error(err)
		}
	}
	for name, want := range wantServer {
		if got := outs[name].All(); !slices.Equal(got, want) {
			t.Errorf("server %s printed %q, want %q", name, got, want)
		}
	}
	if n, err := ns.Count(t.Context()); err != nil || n != 1 { // the name server itself
		t.Errorf("registrations left: %d, %v", n, err)
	}
}

// TestProcesses runs the name server, the three servers and the client as
// separate processes built from their main packages.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	gopyro := testutil.Build(t, "github.com/gopyro/gopyro/cmd/gopyro")
	server := testutil.Build(t, "github.com/gopyro/gopyro/examples/chain/server")
	client := testutil.Build(t, "github.com/gopyro/gopyro/examples/chain/client")

	ns := testutil.Start(t, nil, gopyro, "ns", "--memory", "--port", "0")
	nsLine := ns.Stdout.Wait(t, testutil.Prefix("PYRO:Pyro.NameServer@"))
	nsAddr := strings.TrimPrefix(nsLine, "PYRO:Pyro.NameServer@")

	servers := map[string]*testutil.Process{}
	for _, link := range ring {
		p := testutil.Start(t, nil, server, "-this", link[0], "-next", link[1], "-ns", nsAddr)
		p.Stdout.Wait(t, testutil.Prefix("server_"+link[0]+" started"))
		servers[link[0]] = p
	}
	if got := testutil.Run(t, nil, client, "-ns", nsAddr); got != wantResult+"\n" {
		t.Fatalf("client printed %q, want %q", got, wantResult)
	}
	for name, p := range servers {
		if err := p.Stop(); err != nil {
			t.Errorf("server %s exited with %v; stderr: %s", name, err, p.Stderr.String())
		}
		if got, want := p.Stdout.All(), wantServer[name]; !slices.Equal(got, want) {
			t.Errorf("server %s printed %q, want %q", name, got, want)
		}
	}
	// The servers removed their names on the way out.
	if out := testutil.Run(t, nil, gopyro, "nsc", "--ns", nsAddr, "list", chain.Prefix); strings.Contains(out, chain.Prefix) {
		t.Errorf("names left behind:\n%s", out)
	}
	if err := ns.Stop(); err != nil {
		t.Errorf("name server exited with %v", err)
	}
}

func TestPyList(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{nil, "[]"},
		{[]string{"a"}, "['a']"},
		{[]string{"it's", `back\slash`, "tab\there", "\x01", `'"`}, `["it's", 'back\\slash', 'tab\there', '\x01', '\'"']`},
	} {
		if got := chain.PyList(tt.in); got != tt.want {
			t.Errorf("PyList(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
