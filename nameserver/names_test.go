package nameserver

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/wire"
)

// TestProtocolNamesServed: every name server method the wire package names
// (and the proxy's resolver and this package's client call) is served.
func TestProtocolNamesServed(t *testing.T) {
	s, _ := startNS(t)
	md, err := s.d.Metadata(gopyro.NameServerID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{wire.NSPing, wire.NSRegister, wire.NSLookup, wire.NSLookupEntry, wire.NSListEntries,
		wire.NSYPLookup, wire.NSYPLookupEntries, wire.NSRemove, wire.NSSetMetadata, wire.NSCount} {
		if !slices.Contains(md.Methods, m) {
			t.Errorf("the name server does not serve %q (it serves %v)", m, md.Methods)
		}
	}
}

// TestHostileQueries: patterns and tag lists that would cost the name
// server without bound are refused before any work (issue 11, item 16).
func TestHostileQueries(t *testing.T) {
	_, c := startNS(t)
	ctx := t.Context()
	u := uri(t, "PYRO:obj@127.0.0.1:5001")
	if err := c.Register(ctx, "evil\u202egnp.exe", u); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("a name with a right-to-left override: %v", err)
	}
	for name, re := range map[string]string{
		"nested repetition": "(x{1000}){1000}",
		"deep groups":       strings.Repeat("(", 5000) + "x" + strings.Repeat(")", 5000),
		"2 MiB literal":     strings.Repeat("a", 2<<20),
		"60k alternations":  strings.Repeat("a|", 60_000) + "a",
	} {
		_, err := c.ListRegex(ctx, re)
		if !errors.Is(err, gopyro.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && len(err.Error()) > 1024 {
			t.Errorf("%s: the error quotes the pattern: %d bytes", name, len(err.Error()))
		}
	}
	many := make([]string, 8000)
	for i := range many {
		many[i] = "tag" + strconv.Itoa(i)
	}
	if _, err := c.YPLookup(ctx, many, nil); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("yplookup with 8,000 tags: %v", err)
	}
	if err := c.Register(ctx, "many.tags", u, Metadata(many...)); !errors.Is(err, gopyro.ErrInvalid) {
		t.Fatalf("a registration with 8,000 tags: %v", err)
	}
	// What stays allowed.
	if err := c.Register(ctx, "fine", u, Metadata("a", "b")); err != nil {
		t.Fatal(err)
	}
	if es, err := c.ListRegex(ctx, "fi(n|x)e"); err != nil || len(es) != 1 {
		t.Fatalf("an ordinary regex: %v %v", es, err)
	}
}
