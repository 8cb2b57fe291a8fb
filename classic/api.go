package classic

import "github.com/gopyro/gopyro"

// DefaultPort is the port a classic server listens on unless told
// otherwise, RPyC's classic port.
const DefaultPort = 18812

// ObjectID is the object id of the session object a classic server
// serves: PYRO:gopyro.classic@host:port.
const ObjectID = "gopyro.classic"

// Errors a session call can fail with; match them with errors.Is.
var (
	// ErrSessionLost: the session's worker process is gone (it exited,
	// crashed, ran out of memory, was killed after a deadline, or the
	// session was idle too long or closed). The message says why. The
	// server goes on serving; Connect again for a new session.
	ErrSessionLost = &gopyro.Error{Code: gopyro.CodeClosed, RemoteType: "classic.SessionLost"}
	// ErrCompile: the code does not parse or type-check; the message
	// gives the line and column.
	ErrCompile = &gopyro.Error{Code: gopyro.CodeArgument, RemoteType: "classic.CompileError"}
	// ErrPanic: the code panicked, or a function called by name returned
	// an error. The message has the panic value and the code's position.
	ErrPanic = &gopyro.Error{Code: gopyro.CodeRemote, RemoteType: "classic.Panic"}
	// ErrUnsupported: the code uses something the interpreter (yaegi)
	// lacks: the Go 1.21 builtins min, max and clear, range over an int
	// or a func, standard library symbols newer than Go 1.22.
	ErrUnsupported = &gopyro.Error{Code: gopyro.CodeUnsupported, RemoteType: "classic.Unsupported"}
	// ErrNotSendable: an evaluated value cannot travel (a channel, a
	// func, or a value holding one); the message names the type.
	ErrNotSendable = &gopyro.Error{Code: gopyro.CodeArgument, RemoteType: "classic.NotSendable"}
)

// kindErrors maps a worker's failure kinds to the errors clients see.
var kindErrors = map[string]*gopyro.Error{
	kindCompile:     ErrCompile,
	kindPanic:       ErrPanic,
	kindUnsupported: ErrUnsupported,
	kindValue:       ErrNotSendable,
	kindTimeout:     {Code: gopyro.CodeTimeout, RemoteType: "classic.Timeout"},
	kindArgument:    {Code: gopyro.CodeArgument, RemoteType: "classic.ArgumentError"},
	kindNotFound:    {Code: gopyro.CodeNotFound, RemoteType: "classic.NotFound"},
}

// failureError turns a worker's failure into the error a client sees.
func failureError(f *failure) *gopyro.Error {
	k, ok := kindErrors[f.Kind]
	if !ok {
		k = &gopyro.Error{Code: gopyro.CodeProtocol, RemoteType: "classic.ProtocolError"}
	}
	return &gopyro.Error{Code: k.Code, RemoteType: k.RemoteType, Message: f.Msg, Stack: f.Stack}
}

func lostError(reason string) *gopyro.Error {
	return &gopyro.Error{Code: ErrSessionLost.Code, RemoteType: ErrSessionLost.RemoteType, Message: "the session is lost: " + reason}
}

// Info describes a session, as [Session.Open] returns it.
type Info struct {
	ID  string // the session id, sent with every later call
	PID int    // the worker process
}

// Marks are the offsets just past everything a session's code had
// written to stdout and stderr when a call returned: a client that
// redirected output waits until it has written that far.
type Marks struct {
	Stdout int64
	Stderr int64
}

// Chunk is a piece of a session's output: FD 1 for stdout, 2 for stderr;
// End is the stream offset just past Data.
type Chunk struct {
	FD   int
	End  int64
	Data []byte
}
