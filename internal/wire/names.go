package wire

import "math/rand/v2"

// Methods of the built-in object every daemon serves under
// gopyro.DaemonID. The daemon's tests check that each is served.
const (
	MethodPing        = "Ping"        // () -> (): the daemon is alive
	MethodRegistered  = "Registered"  // () -> ([]string): registered object ids
	MethodGetMetadata = "GetMetadata" // (id) -> (gopyro.ObjectMetadata)
	MethodStreamNext  = "StreamNext"  // (stream id) -> (chunk)
	MethodStreamClose = "StreamClose" // (stream id) -> (bool: it was open)
	MethodCancel      = "Cancel"      // (seq), oneway: cancel the caller's request seq on this connection
)

// Methods of the name server object (gopyro.NameServerID), called by the
// proxy's resolver and the name server's client. The name server's tests
// check that each is served.
const (
	NSPing            = "Ping"
	NSRegister        = "Register"        // (name, uri, safe, tags) -> ()
	NSLookup          = "Lookup"          // (name) -> (uri)
	NSLookupEntry     = "LookupEntry"     // (name) -> (entry)
	NSListEntries     = "ListEntries"     // (prefix, regex) -> ([]entry)
	NSYPLookup        = "YPLookup"        // (all, any) -> (map name -> uri)
	NSYPLookupEntries = "YPLookupEntries" // (all, any) -> ([]entry)
	NSRemove          = "Remove"          // (name, prefix, regex) -> (count)
	NSSetMetadata     = "SetMetadata"     // (name, tags) -> ()
	NSCount           = "Count"           // () -> (int)
)

// ChooseOne picks the registration a PYROMETA URI resolves to among those
// carrying its tags: one at random, so that load spreads over them.
// uris must not be empty.
func ChooseOne(uris []string) string {
	return uris[rand.IntN(len(uris))]
}
