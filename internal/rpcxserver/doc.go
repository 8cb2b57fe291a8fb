// Package rpcxserver is the one place where gopyro touches rpcx's server:
// it reads rpcx frames from connections the daemon accepted, hands each
// request to a [wire.Handler] as a transport-neutral [wire.Request], and
// writes the replies.
//
// What it relies on in rpcx v1.9.1, each guarded by a test here:
//   - ServeListener with a network name other than tcp/tcp4/tcp6/reuseport
//     starts no cmux (rpcx's HTTP gateway and JSON-RPC sniffing), so the
//     connections it accepts are the ones this package hands it;
//   - every request is read into a buffer of its own that rpcx never
//     reuses, which is what lets [wire.Request.Payload] belong to the
//     handler;
//   - AddHandler must run before serving (its router map is not locked).
//
// rpcx logs through a package-global logger that writes to stdout; the
// first [New] replaces it, once per process, with one that discards.
package rpcxserver
