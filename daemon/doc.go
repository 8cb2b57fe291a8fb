// Package daemon serves ordinary Go values as remote objects.
//
// A [Daemon] listens on a caller-owned net.Listener. [Daemon.Register]
// exposes a value's exported methods and returns its URI,
// PYRO:obj_<hex>@host:port. A method may take a [context.Context] first: it
// carries the caller's deadline (it is also cancelled when the caller
// disconnects or the daemon closes) and, through [CallInfoFrom], the caller's
// address and correlation id. A method's last result may be an error; the
// caller receives it as a *gopyro.Error with the remote type name and
// message. A panicking method is reported the same way and the daemon
// keeps serving.
//
// # Method names
//
// Remote method names are the Go method names. So that clients written for
// Pyro find them, the same method is also reachable by its name with the
// first letter lower-cased and by its snake_case form: Echo, echo;
// OnewayEcho, onewayEcho, oneway_echo. A Go name always wins over an alias.
//
// # Instance modes
//
// [Daemon.Register] serves one shared instance (mode [Single]).
// [Daemon.RegisterFactory] serves a fresh instance per client connection
// ([Session]) or per call ([PerCall]), made by a factory.
//
// # Streams, references and callbacks
//
// A method returning iter.Seq[T] or a channel of T serves a stream: the
// items go to the caller in chunks (Config.StreamChunk per round trip) as
// it reads them with proxy.Stream; the method's context lives until the
// stream is closed. A connection holds at most Config.MaxStreams open
// streams; those of a vanished client close after Config.StreamLinger.
//
// A method result that is an object registered here (a pointer given to
// Register) is sent as a reference; the caller gets a proxy for it. A
// parameter of type *proxy.Proxy receives objects the caller passes by
// reference: a [Ref] from [Daemon.Ref], or a proxy. That is how callbacks
// work: the client serves its object on a daemon of its own ([Start]) and
// passes a reference; mind that the server must be able to dial that
// daemon's advertised address.
//
// # Limits and security
//
// Defaults are safe: messages up to 64 MiB, 1024 calls in flight, 1024
// connections. Use [WithTLS] and [WithToken] when binding anything but a
// loopback address; without either the daemon logs a warning.
package daemon
