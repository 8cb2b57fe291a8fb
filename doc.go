// Package gopyro holds the shared vocabulary of gopyro: transparent remote
// objects for Go in the spirit of Python's Pyro and RPyC.
//
// # Architecture
//
//	gopyro (this package)  URI, Error and Code, well-known names and ports
//	internal/wire          the wire: rpcx frames carrying msgpack payloads, the
//	                       client, and the transport seam (Request, Handler)
//	internal/rpcxserver    the one package that uses rpcx's server
//	daemon                 serves ordinary Go values as remote objects
//	proxy                  calls remote objects; resolves PYRONAME/PYROMETA
//	nameserver             the name server object, its stores, Locate, Client
//	cmd/gopyro             the command line tool
//
// The protocol is specified in docs/wire.md.
//
// A [daemon.Daemon] serves registered values; each gets a URI such as
// PYRO:obj_1f2e3d@127.0.0.1:40123. A [proxy.Proxy] calls the value's exported
// methods over TCP. A name server maps logical names to URIs.
//
// # URI grammar
//
//	PYRO:<objectid>@<location>
//	PYRONAME:<name>[@<host>[:<port>]]
//	PYROMETA:<tag>[,<tag>...][@<host>[:<port>]]
//	location = host:port | [ipv6]:port | ./u:<unix socket path>
//
// The scheme is case-insensitive; it is always written in upper case.
// For PYRONAME and PYROMETA the location names the name server.
package gopyro
