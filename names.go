package gopyro

// Well-known object ids and ports, shared with Pyro where Pyro has them.
const (
	// NameServerID is the object id under which a name server serves itself.
	NameServerID = "Pyro.NameServer"
	// DaemonID is the object id of the built-in object every daemon serves
	// (ping, registered ids, per-object metadata).
	DaemonID = "Pyro.Daemon"
	// NameServerPort is the default TCP port of the name server.
	NameServerPort = 9090
	// ClassicPort is the default TCP port of the classic (RPyC) server.
	ClassicPort = 18812
	// DefaultHost is the address servers bind to unless told otherwise.
	DefaultHost = "127.0.0.1"
)

// MaxNameLen bounds object ids, registered names, tags and method names,
// in bytes: longer ones are refused (and never echoed back in full).
const MaxNameLen = 4096

// MinMessageSize is the smallest message size limit daemons and proxies
// accept as configuration.
const MinMessageSize = 1024

// DefaultMaxMessageSize is the largest message (a call's arguments, a
// reply's results) daemons and proxies accept unless configured otherwise:
// 64 MiB.
const DefaultMaxMessageSize = 64 << 20

// ObjectMetadata describes a registered object, as a daemon's built-in
// object returns it (Pyro's get_metadata).
type ObjectMetadata struct {
	// ID is the object id.
	ID string `msgpack:"id"`
	// Methods are the remotely callable methods (Go names), sorted.
	Methods []string `msgpack:"methods"`
	// Oneway are the methods declared oneway, sorted.
	Oneway []string `msgpack:"oneway"`
	// Mode is the instance mode: single, session or percall.
	Mode string `msgpack:"mode"`
}
