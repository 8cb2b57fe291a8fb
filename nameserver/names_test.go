package nameserver

import (
	"slices"
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
