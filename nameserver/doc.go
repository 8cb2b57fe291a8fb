// Package nameserver maps names to object URIs, like Pyro's name server.
//
// A [Server] is a daemon serving the name server object under the
// well-known id gopyro.NameServerID (Pyro.NameServer), by default on
// 127.0.0.1:9090. Its calls follow Pyro: Register (with a safe flag that
// refuses to overwrite, and metadata tags), Lookup, List (prefix or
// regular expression), YPLookup (all-of and any-of tags), Remove (by name,
// prefix or regular expression; never itself), SetMetadata, Count, Ping.
//
// Registrations live in a [Store]: [NewMemoryStore], or [OpenBoltStore]
// (the default of "gopyro ns"), which survives restarts. With
// [Config.AutoClean] the server probes every registered daemon and drops
// registrations whose daemon has been unreachable for longer than that.
//
// Clients find a name server with [Locate]: an explicit address, then the
// GOPYRO_NS_HOST and GOPYRO_NS_PORT environment variables, then
// 127.0.0.1:9090, then mDNS (service _gopyro-ns._tcp), only when enabled.
// A [Client] is a typed proxy for the name server object and a
// proxy.Resolver.
package nameserver
