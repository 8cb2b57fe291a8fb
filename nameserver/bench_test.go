package nameserver

import (
	"testing"

	"github.com/gopyro/gopyro/proxy"
)

// BenchmarkLookup measures name server lookups over one connection.
func BenchmarkLookup(b *testing.B) {
	s, c := startNSB(b)
	_ = s
	if err := c.Register(b.Context(), "bench.name", uri(b, uriA)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Lookup(b.Context(), "bench.name"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPyroNameFirstCall measures creating a PYRONAME proxy plus its
// first call: a lookup, a dial and the call.
func BenchmarkPyroNameFirstCall(b *testing.B) {
	s, c := startNSB(b)
	serveHelloB(b, c)
	uri := "PYRONAME:bench.hello@" + s.URI().Location()
	b.ReportAllocs()
	for b.Loop() {
		p, err := proxy.New(uri)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Call(b.Context(), "Who"); err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}
