package nameserver

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/internal/testutil"
	"github.com/gopyro/gopyro/internal/wire"
	"github.com/gopyro/gopyro/proxy"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startNS serves a name server on 127.0.0.1:0 and returns a client.
func startNS(t *testing.T, opts ...Option) (*Server, *Client) { return startNSTB(t, opts...) }

func startNSB(b *testing.B) (*Server, *Client) { return startNSTB(b) }

func startNSTB(t testing.TB, opts ...Option) (*Server, *Client) {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(t.Context(), ln) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		t.Fatalf("Serve: %v", err)
	}
	c, err := NewClient(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		s.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, c
}

const uriA = "PYRO:obj_a@127.0.0.1:5001"

// uri parses s, which must be valid.
func uri(t testing.TB, s string) gopyro.URI {
	t.Helper()
	u, err := gopyro.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSemantics(t *testing.T) {
	_, c := startNS(t)
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Register(ctx, "example.shop.Shop", uri(t, uriA), Metadata("shop", "eu")))
	must(c.Register(ctx, "example.shop.Bank", uri(t, "PYRO:obj_b@127.0.0.1:5002"), Metadata("bank", "eu")))
	must(c.Register(ctx, "other.thing", uri(t, "PYRO:obj_c@127.0.0.1:5003")))

	if u, err := c.Lookup(ctx, "example.shop.Shop"); err != nil || u.String() != uriA {
		t.Fatalf("Lookup = %v %v", u, err)
	}
	e, err := c.LookupEntry(ctx, "example.shop.Shop")
	if err != nil || strings.Join(e.Metadata, ",") != "eu,shop" {
		t.Fatalf("LookupEntry = %+v %v", e, err)
	}
	_, err = c.Lookup(ctx, "no.such.name")
	if !errors.Is(err, gopyro.ErrNotFound) || !strings.Contains(err.Error(), "no.such.name") {
		t.Fatalf("unknown name: %v", err)
	}
	if err := c.Register(ctx, "example.shop.Shop", uri(t, "PYRO:x@h:1"), Safe()); !errors.Is(err, gopyro.ErrExists) {
		t.Fatalf("safe register: %v", err)
	}
	must(c.Register(ctx, "example.shop.Shop", uri(t, uriA), Metadata("shop", "eu"))) // unsafe replace is fine
	for _, bad := range []string{"", "has space", "ctl\x01", gopyro.NameServerID} {
		if err := c.Register(ctx, bad, uri(t, uriA)); !errors.Is(err, gopyro.ErrInvalid) {
			t.Errorf("Register(%q) = %v", bad, err)
		}
	}
	if err := c.Register(ctx, "n", uri(t, "PYRONAME:x")); !errors.Is(err, gopyro.ErrInvalid) {
		t.Errorf("Register of a PYRONAME uri = %v", err)
	}
	// The server checks what a client of its own sends, too.
	for _, bad := range []string{"not a uri", "PYRONAME:x"} {
		if _, err := c.p.Call(ctx, wire.NSRegister, "n", bad, false, []string{}); !errors.Is(err, gopyro.ErrInvalid) {
			t.Errorf("raw register of %q = %v", bad, err)
		}
	}

	names := func(es []Entry, err error) string {
		t.Helper()
		must(err)
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return strings.Join(out, ",")
	}
	if got := names(c.List(ctx, "example.shop.")); got != "example.shop.Bank,example.shop.Shop" {
		t.Fatalf("List prefix = %s", got)
	}
	if got := names(c.ListRegex(ctx, `.*\.thing`)); got != "other.thing" {
		t.Fatalf("List regex = %s", got)
	}
	if _, err := c.ListRegex(ctx, "(unclosed"); !errors.Is(err, gopyro.ErrInvalid) || !strings.Contains(err.Error(), "invalid regex") {
		t.Fatalf("bad regex: %v", err)
	}
	if got := names(c.YPLookup(ctx, []string{"eu"}, nil)); got != "example.shop.Bank,example.shop.Shop" {
		t.Fatalf("yplookup all = %s", got)
	}
	if got := names(c.YPLookup(ctx, []string{"eu", "bank"}, nil)); got != "example.shop.Bank" {
		t.Fatalf("yplookup all2 = %s", got)
	}
	if got := names(c.YPLookup(ctx, nil, []string{"shop", "nothing"})); got != "example.shop.Shop" {
		t.Fatalf("yplookup any = %s", got)
	}
	must(c.SetMetadata(ctx, "other.thing", "eu", "misc"))
	if got := names(c.YPLookup(ctx, []string{"misc"}, nil)); got != "other.thing" {
		t.Fatalf("after setmeta = %s", got)
	}
	if n, err := c.Count(ctx); err != nil || n != 4 { // three plus the name server itself
		t.Fatalf("Count = %d %v", n, err)
	}
	if ok, err := c.Remove(ctx, "no.such.name"); err != nil || ok {
		t.Fatalf("Remove of an unknown name = %v %v", ok, err)
	}
	if n, err := c.RemovePrefix(ctx, "example.shop.B"); err != nil || n != 1 {
		t.Fatalf("RemovePrefix = %d %v", n, err)
	}
	must(c.Register(ctx, "example.shop.Bank", uri(t, "PYRO:obj_b@127.0.0.1:5002"), Metadata("bank", "eu")))
	if n, err := c.RemoveRegex(ctx, ".*"); err != nil || n != 3 {
		t.Fatalf("Remove regex = %d %v", n, err)
	}
	// Removing the name server's own name is refused, saying why (issue
	// 15, item 13); the server never removes it either.
	if n, err := c.Remove(ctx, gopyro.NameServerID); !errors.Is(err, gopyro.ErrInvalid) || n {
		t.Fatalf("Remove self = %v %v", n, err)
	}
	if n, err := proxy.Call[int](ctx, c.p, wire.NSRemove, gopyro.NameServerID, "", ""); err != nil || n != 0 {
		t.Fatalf("NSRemove self = %v %v", n, err)
	}
	if u, err := c.Lookup(ctx, gopyro.NameServerID); err != nil || u.Object != gopyro.NameServerID {
		t.Fatalf("the name server lost itself: %v %v", u, err)
	}
	if _, err := c.p.Call(ctx, wire.NSRemove, "a", "b", ""); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("Remove with two selectors: %v", err)
	}
}

func TestBoltStorePersistsAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ns.db")
	st, err := OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBoltStore(path); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second open: %v", err)
	}
	if err := st.Put(Entry{Name: "a", URI: uriA, Metadata: []string{"x"}}, true); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(Entry{Name: "a", URI: uriA}, true); !errors.Is(err, gopyro.ErrExists) {
		t.Fatalf("safe put: %v", err)
	}
	st.Close()
	st, err = OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, ok, err := st.Get("a")
	if err != nil || !ok || e.URI != uriA || e.Metadata[0] != "x" {
		t.Fatalf("after reopen: %+v %v %v", e, ok, err)
	}
}

func TestBoltStoreRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, []byte(strings.Repeat("not a bolt file ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBoltStore(corrupt); err == nil || !strings.Contains(err.Error(), corrupt) {
		t.Fatalf("corrupt store: %v", err)
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o500)
		if _, err := OpenBoltStore(filepath.Join(ro, "ns.db")); err == nil {
			t.Fatal("unwritable store opened")
		}
	}
	if _, err := OpenBoltStore("/proc/gopyro-cannot-exist/ns.db"); err == nil {
		t.Fatal("store in /proc opened")
	}
}

type Hello struct{ name string }

func (h *Hello) Who() string { return h.name }

func serveHelloB(b *testing.B, c *Client) {
	d := testutil.Serve(b)
	u, err := d.Register(&Hello{"bench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Register(b.Context(), "bench.hello", u); err != nil {
		b.Fatal(err)
	}
}

// serveHello serves a Hello on a fresh daemon and registers it as name.
func serveHello(t *testing.T, c *Client, name, who string, tags ...string) *daemon.Daemon {
	t.Helper()
	d := testutil.Serve(t)
	u, err := d.Register(&Hello{who})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Register(t.Context(), name, u, Metadata(tags...)); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPyroNameReresolvesAfterRestart(t *testing.T) {
	s, c := startNS(t)
	d1 := serveHello(t, c, "example.hello", "first")
	p, err := proxy.New("PYRONAME:example.hello@" + s.URI().Location())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if who, err := proxy.Call[string](t.Context(), p, "Who"); err != nil || who != "first" {
		t.Fatalf("first = %q %v", who, err)
	}
	d1.Close()
	serveHello(t, c, "example.hello", "second") // a new port
	var who string
	for attempt := 0; ; attempt++ {
		who, err = proxy.Call[string](t.Context(), p, "Who")
		if err == nil || attempt == 2 {
			break
		}
		if !errors.Is(err, gopyro.ErrCommunication) {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if err != nil || who != "second" {
		t.Fatalf("after restart = %q %v", who, err)
	}
}

func TestPyroMetaAndResolver(t *testing.T) {
	s, c := startNS(t)
	serveHello(t, c, "gpu.one", "one", "gpu", "fast")
	serveHello(t, c, "gpu.two", "two", "gpu")
	p, err := proxy.New("PYROMETA:gpu,fast@" + s.URI().Location())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if who, err := proxy.Call[string](t.Context(), p, "Who"); err != nil || who != "one" {
		t.Fatalf("PYROMETA = %q %v", who, err)
	}
	// *Client as the resolver, for a PYRONAME without a location.
	q, err := proxy.New("PYRONAME:gpu.two", proxy.WithResolver(c))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if who, err := proxy.Call[string](t.Context(), q, "Who"); err != nil || who != "two" {
		t.Fatalf("client resolver = %q %v", who, err)
	}
	none, _ := proxy.New("PYROMETA:nothing@"+s.URI().Location(), proxy.WithResolver(c))
	defer none.Close()
	if _, err := none.Call(t.Context(), "Who"); !errors.Is(err, gopyro.ErrNotFound) {
		t.Fatalf("PYROMETA without match: %v", err)
	}
}

func TestAutoClean(t *testing.T) {
	cleaned := make(chan string, 4)
	_, c := startNS(t, WithAutoClean(100*time.Millisecond), withCleaned(cleaned))
	live := serveHello(t, c, "live", "x")
	dead := serveHello(t, c, "dead", "y")
	_ = live
	dead.Close()
	if name := <-cleaned; name != "dead" {
		t.Fatalf("cleaned %q", name)
	}
	if _, err := c.Lookup(t.Context(), "dead"); !errors.Is(err, gopyro.ErrNotFound) {
		t.Fatalf("dead still registered: %v", err)
	}
	if _, err := c.Lookup(t.Context(), "live"); err != nil {
		t.Fatalf("live removed: %v", err)
	}
}

func TestLocate(t *testing.T) {
	s, _ := startNS(t)
	c, err := Locate(t.Context(), At(s.URI().Location()))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	t.Setenv(proxy.EnvNSHost, "127.0.0.1")
	t.Setenv(proxy.EnvNSPort, s.URI().Location()[strings.LastIndex(s.URI().Location(), ":")+1:])
	c, err = Locate(t.Context())
	if err != nil {
		t.Fatalf("Locate by environment: %v", err)
	}
	c.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	// Nobody answering is not "not found" (issue 15, item 25).
	if _, err := Locate(t.Context(), At(addr)); !errors.Is(err, gopyro.ErrCommunication) {
		t.Fatalf("Locate nowhere: %v", err)
	}
}

// TestMDNSDiscovery advertises and discovers a name server over mDNS. mDNS
// multicasts, so the test only runs inside a private network namespace
// holding nothing but lo: it re-executes itself under "unshare -n" and
// skips, saying why, when that is not possible.
func TestMDNSDiscovery(t *testing.T) {
	if os.Getenv("GOPYRO_IN_NETNS") != "1" {
		unshare, err1 := exec.LookPath("unshare")
		ip, err2 := exec.LookPath("ip")
		if err1 != nil || err2 != nil {
			t.Skip("mDNS test skipped: needs unshare(1) and ip(8) to make a private network namespace")
		}
		script := ip + " link set lo up && " + ip + " route add 224.0.0.0/4 dev lo && exec \"$0\" -test.run='^TestMDNSDiscovery$' -test.v"
		cmd := exec.CommandContext(t.Context(), unshare, "-n", "sh", "-c", script, os.Args[0])
		cmd.Env = append(os.Environ(), "GOPYRO_IN_NETNS=1")
		out, err := cmd.CombinedOutput()
		if err != nil && strings.Contains(string(out), "unshare failed") || err != nil && !strings.Contains(string(out), "=== RUN") {
			t.Skipf("mDNS test skipped: cannot create a network namespace here (%v): %s", err, strings.TrimSpace(string(out)))
		}
		if err != nil || !strings.Contains(string(out), "--- PASS: TestMDNSDiscovery") {
			t.Fatalf("mDNS test in namespace failed: %v\n%s", err, out)
		}
		return
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Name != "lo" {
			t.Fatalf("refusing to multicast: interface %s exists (not a private namespace)", i.Name)
		}
	}
	s, _ := startNS(t, WithMDNSAdvertise(true))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	u, err := Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("discovered in %v", time.Since(start))
	if u.String() != s.URI().String() {
		t.Fatalf("discovered %v, want %v", u, s.URI())
	}
	// Locate falls back to mDNS when the default address does not answer.
	t.Setenv(proxy.EnvNSPort, "1")
	c, err := Locate(ctx, WithMDNS(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.URI().String() != s.URI().String() {
		t.Fatalf("Locate found %v", c.URI())
	}
}

// Locate takes the address forms people write (issue 15, items 17, 27).
func TestNSAddressForms(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"127.0.0.1:9091", "PYRO:Pyro.NameServer@127.0.0.1:9091"},
		{":9091", "PYRO:Pyro.NameServer@127.0.0.1:9091"},
		{"localhost", "PYRO:Pyro.NameServer@localhost:9090"},
		{"[::1]", "PYRO:Pyro.NameServer@[::1]:9090"},
		{"PYRO:Pyro.NameServer@10.0.0.1:9999", "PYRO:Pyro.NameServer@10.0.0.1:9999"},
	} {
		u, err := ParseAddress(c.in)
		if err != nil || u.String() != c.want {
			t.Errorf("ParseAddress(%q) = %v, %v; want %s", c.in, u, err, c.want)
		}
	}
	for _, in := range []string{"host:port", "127.0.0.1:70000", "PYRO:obj@h:1", "PYRONAME:x", "a:b:c"} {
		if _, err := ParseAddress(in); !errors.Is(err, gopyro.ErrInvalid) || !strings.Contains(err.Error(), "want HOST:PORT") {
			t.Errorf("ParseAddress(%q): %v", in, err)
		}
	}
}

// A store path in a directory that does not exist is an error, not a
// tree of new directories; the name server's own registration takes no
// metadata, as it cannot be registered (issue 15, item 27).
func TestStoreDirAndSelfMetadata(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "ns.db")
	if _, err := OpenBoltStore(missing); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("OpenBoltStore(%s): %v", missing, err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Fatalf("the directory was created: %v", err)
	}
	t.Setenv("XDG_STATE_HOME", filepath.Join(t.TempDir(), "state"))
	p, err := DefaultStorePath()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Dir(p)); err != nil || !fi.IsDir() {
		t.Fatalf("the default directory %s was not made: %v", filepath.Dir(p), err)
	}
	_, c := startNS(t)
	if err := c.SetMetadata(t.Context(), gopyro.NameServerID, "x"); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("SetMetadata of the name server's own name: %v", err)
	}
}
