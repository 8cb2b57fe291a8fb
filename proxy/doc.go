// Package proxy calls remote objects served by a gopyro daemon, or by a
// Python Pyro4 or Pyro5 daemon (found out per address, nothing to set; see
// [WithPyroSerializer]).
//
// [New] takes a PYRO:, PYRONAME: or PYROMETA: URI and connects lazily, on
// the first call. A Proxy is safe for concurrent use by many goroutines:
// calls are multiplexed over one connection. A lost connection is redialled
// on the next call, so a daemon restarted on the same address is reached
// again without a new proxy (a request found to face a closed connection
// before it was sent goes out on a new one); a PYRONAME or PYROMETA proxy
// also resolves its name again when its object cannot be reached.
//
// Calls come in four shapes: [Proxy.Call] (dynamic, typed decoding of the
// results through [Results]), [Call] (generic, one result), [Proxy.Bind]
// (a struct of func fields that reads like local code; a field returning
// iter.Seq2[T, error] reads a stream) and [Proxy.Go]
// (a future). [Proxy.Oneway] sends without waiting for a reply.
//
// [Proxy.Batch] sends many calls in one round trip; [Stream] reads a
// method's stream lazily, in chunks; a *Proxy result receives an object
// reference (autoproxy), and a *Proxy argument passes one.
//
// Errors are *gopyro.Error values: errors.Is(err, gopyro.ErrNotFound) and
// friends work on errors raised by the remote side too.
package proxy
