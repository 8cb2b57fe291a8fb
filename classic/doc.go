// Package classic is RPyC's classic mode in Go: remote execution of Go
// source, interpreted by yaegi, each client session in its own worker
// process.
//
// A [Server] serves sessions; [Connect] opens one. Code runs with
// [Client.Execute], values come back with [Eval] and [Call], files move
// with [Client.Upload] and [Client.Download]. A session's stdout and
// stderr go to the server's console until the client redirects them
// ([Client.RedirectStdout]); redirected output is streamed while the code
// runs, in order, with bounded buffering (a slow writer slows the script).
//
// Workers are started, handshaken and killed through hashicorp/go-plugin;
// requests then travel over a Unix socket pair the server gives the
// worker (its fd 3) instead of go-plugin's net/rpc over yamux, which
// costs about 190 µs a call on this kind of machine; the worker's fds 1
// and 2 are pipes the server reads, so every byte written there counts
// as output, and a crashing worker's last words are kept.
//
// yaegi is not a sandbox: a session can do anything its process can.
// Bind to loopback, or require a token or TLS. Its limits are reported
// as [ErrUnsupported]: standard library symbols up to Go 1.22, no min,
// max or clear builtins, no range over an int or a func.
package classic
