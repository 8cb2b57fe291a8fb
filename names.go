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
