package daemon

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/internal/rpcxserver"
	"github.com/gopyro/gopyro/internal/wire"
)

// InstanceMode says which instance of a registered type serves a call.
type InstanceMode uint8

const (
	// Single: one registered instance serves every call (concurrently).
	Single InstanceMode = iota
	// Session: one instance per client connection, made by the factory on
	// the connection's first call and dropped when it closes (its Close
	// method, if it has one, is called).
	Session
	// PerCall: a fresh instance for every call.
	PerCall
)

func (m InstanceMode) String() string {
	switch m {
	case Single:
		return "single"
	case Session:
		return "session"
	case PerCall:
		return "percall"
	}
	return fmt.Sprintf("InstanceMode(%d)", m)
}

// transport reads requests from a connection and writes their replies;
// rpcx's frames today (internal/rpcxserver). A second protocol goes beside
// it, chosen per connection by its first bytes.
type transport interface {
	// ServeConn serves c in the background; tag is wire.Request.Conn of
	// its requests; onClose runs once when c is closed.
	ServeConn(c net.Conn, tag any, onClose func()) error
	// Close stops serving every connection.
	Close() error
}

// Daemon serves registered objects. Create it with [New]; it is safe for
// concurrent use.
type Daemon struct {
	cfg      Config
	tr       transport
	ctx      context.Context // cancelled by Close; parent of every call's context
	cancel   context.CancelFunc
	ready    chan struct{}
	nextConn atomic.Uint64

	mu      sync.RWMutex
	objects map[string]*entry          // guarded by mu
	types   map[reflect.Type]*typeInfo // guarded by mu
	byInst  map[any]string             // registered Single pointer instances to their ids; guarded by mu
	loc     location                   // advertised location; guarded by mu
	ln      net.Listener               // guarded by mu
	serving bool                       // guarded by mu
	closed  bool                       // guarded by mu

	// Connections have a lock of their own: connecting and disconnecting
	// does not hold up calls, which look objects up under mu. Lock order:
	// mu before connMu.
	connMu sync.Mutex
	conns  map[*connState]struct{} // open connections; guarded by connMu

	// Streams have a lock of their own: opening, reading and closing them
	// does not hold up calls, which look objects up under mu.
	smu     sync.Mutex
	streams map[string]*stream // open streams by id; guarded by smu
	owned   map[uint64]int     // open streams per connection id; guarded by smu

	// In-flight accounting, without the lock: calls on different objects
	// and connections do not serialise on it.
	draining  atomic.Bool  // Shutdown or Close began
	active    atomic.Int64 // calls running now
	holds     atomic.Int64 // requests being answered (a call ended, its reply not yet written)
	drained   chan struct{}
	drainOnce sync.Once // closes drained

	refusing sync.WaitGroup // goroutines telling refused connections why

	pyroMu       sync.Mutex
	pyroConns    map[*pyroConn]struct{} // Python clients' connections, for watchPyro; guarded by pyroMu
	pyroScanning bool                   // watchPyro runs; guarded by pyroMu

	budget *wire.Budget // bytes of requests and replies in flight

	// Oneway calls over the in-flight limit wait for a slot: end wakes
	// them by closing slotFreed (then replaced) while any wait.
	waiters   atomic.Int32
	slotMu    sync.Mutex
	slotFreed chan struct{} // guarded by slotMu
	dropped   atomic.Uint64 // oneway calls dropped (Config.DropOneway)

	// Repeated warnings, each written at most once a second.
	dropLog, refuseLog, acceptLog rateLog
}

// entry is one registered object.
type entry struct {
	id      string
	mode    InstanceMode
	inst    reflect.Value // Single
	factory func(ctx context.Context) (reflect.Value, error)
	info    *typeInfo
	oneway  []string // Go names
	pyro    *entry   // what Python Pyro clients call instead, if set
}

// connState is what the daemon keeps per client connection.
type connState struct {
	id        uint64
	conn      net.Conn        // as accepted (TLS-wrapped when configured)
	ctx       context.Context // cancelled when the connection closes
	cancel    context.CancelFunc
	done      chan struct{}            // closed when the connection has closed
	instances map[string]reflect.Value // Session instances by object id; guarded by Daemon.connMu
	closed    bool                     // the connection has closed; guarded by Daemon.connMu

	cmu     sync.Mutex
	cancels map[uint64]context.CancelFunc // calls in flight by request seq; guarded by cmu

	active atomic.Int64 // requests being served
}

// Busy reports that the connection has requests being served: it waits for
// their replies and is not idle.
func (cs *connState) Busy() bool { return cs.active.Load() > 0 }

// track lets a Cancel call naming seq run cancel, until untrack.
func (cs *connState) track(seq uint64, cancel context.CancelFunc) {
	cs.cmu.Lock()
	if cs.cancels == nil {
		cs.cancels = map[uint64]context.CancelFunc{}
	}
	cs.cancels[seq] = cancel
	cs.cmu.Unlock()
}

// untrack ends what track began, and cancels.
func (cs *connState) untrack(seq uint64, cancel context.CancelFunc) {
	cs.cmu.Lock()
	delete(cs.cancels, seq)
	cs.cmu.Unlock()
	cancel()
}

// cancelCall cancels the call in flight with request seq, if there is one.
func (cs *connState) cancelCall(seq uint64) bool {
	cs.cmu.Lock()
	cancel, ok := cs.cancels[seq]
	cs.cmu.Unlock()
	if ok {
		cancel()
	}
	return ok
}

// New returns a daemon configured by opts. It serves nothing until
// [Daemon.Serve] or [Daemon.ServeConn].
func New(opts ...Option) (*Daemon, error) {
	var cfg Config
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg:     cfg,
		ready:   make(chan struct{}),
		objects: map[string]*entry{},
		types:   map[reflect.Type]*typeInfo{},
		conns:   map[*connState]struct{}{},
		streams: map[string]*stream{},
		owned:   map[uint64]int{},
		byInst:  map[any]string{},
		drained: make(chan struct{}),

		slotFreed: make(chan struct{}),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if cfg.Advertise != "" {
		d.loc, _ = parseLocation(cfg.Advertise)
	}
	d.budget = wire.NewBudget(cfg.MaxBytesInFlight)
	d.tr = rpcxserver.New(d, rpcxserver.Limits{
		MaxFrame: cfg.MaxMessageSize + wire.FrameOverhead,
		Timeouts: &wire.ReadTimeouts{
			Handshake: max(cfg.HandshakeTimeout, 0), Frame: max(cfg.FrameTimeout, 0), Idle: max(cfg.IdleTimeout, 0),
		},
		WriteTimeout:    max(cfg.WriteTimeout, 0),
		Budget:          d.budget,
		MaxPending:      cfg.MaxConnInFlight,
		MaxPendingBytes: cfg.MaxBytesInFlight / 8,
	})
	if err := d.add(gopyro.DaemonID, Single, reflect.ValueOf(&daemonObject{d: d}), nil, nil); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Daemon) fail(op string, code gopyro.Code, format string, args ...any) *gopyro.Error {
	return &gopyro.Error{Code: code, Op: op, Message: fmt.Sprintf(format, args...)}
}
