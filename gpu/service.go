package gpu

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
)

// ObjectID is the object id of the service's session object, and
// DefaultName the name it registers with the name server.
const (
	ObjectID    = "gopyro.gpu"
	DefaultName = "gopyro.gpu"
)

// Defaults of [Config].
const (
	DefaultMaxArrays = 1 << 16
	DefaultChunk     = 4 << 20
	defaultMemory    = 4 << 30 // when the backend does not know its memory
)

// Config holds a service's limits; the zero Config gives the defaults.
type Config struct {
	// MaxMemory bounds the bytes of all arrays together. Default: half
	// of the backend's first device's memory (4 GiB when unknown).
	MaxMemory int64
	// SessionMemory bounds the bytes of the arrays one session owns.
	// Default: MaxMemory.
	SessionMemory int64
	// MaxArray bounds one array's bytes. Default: SessionMemory.
	MaxArray int64
	// MaxArrays bounds the arrays one session holds. Default 65536.
	MaxArrays int
	// Chunk is the most bytes one Read or Write call moves; clients
	// split larger transfers. Default 8 MiB.
	Chunk int
	// Logger receives the service's log lines. Default: discard.
	Logger *slog.Logger
}

// Service is the GPU compute service: a remote object whose sessions
// (one per client connection) make device-resident arrays and run
// operations on them with a Backend. Arrays belong to the sessions that
// hold them: when the last holder frees one or disconnects, it is freed.
type Service struct {
	b    Backend
	cfg  Config
	info Info
	log  *slog.Logger

	mu     sync.Mutex
	d      *daemon.Daemon
	arrays map[string]*array // by object id
	used   int64
	closed bool

	exprs sync.Map // source -> *Expr
	nexpr int64
}

// array is one device array and its bookkeeping. mu is held for reading
// by the operations that read the array, for writing by those that write
// or free it; the other fields but the constant ones are under
// Service.mu.
type array struct {
	id    string
	h     Handle
	t     DType
	shape Shape
	n     int
	bytes int64
	ref   daemon.Ref

	mu      sync.RWMutex
	freed   bool // under mu (written with both locks held)
	owner   *Session
	holders map[*Session]struct{}
}

// NewService returns a service running on b.
func NewService(ctx context.Context, b Backend, cfg Config) (*Service, error) {
	info, err := b.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("gpu: backend info: %w", err)
	}
	if cfg.MaxMemory <= 0 {
		cfg.MaxMemory = defaultMemory
		if len(info.Devices) > 0 && info.Devices[0].Memory > 0 {
			cfg.MaxMemory = info.Devices[0].Memory / 2
		}
	}
	if cfg.SessionMemory <= 0 || cfg.SessionMemory > cfg.MaxMemory {
		cfg.SessionMemory = cfg.MaxMemory
	}
	if cfg.MaxArray <= 0 || cfg.MaxArray > cfg.SessionMemory {
		cfg.MaxArray = cfg.SessionMemory
	}
	if cfg.MaxArrays <= 0 {
		cfg.MaxArrays = DefaultMaxArrays
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = DefaultChunk
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	info.MaxMemory, info.SessionMemory, info.MaxArray, info.Chunk = cfg.MaxMemory, cfg.SessionMemory, cfg.MaxArray, cfg.Chunk
	return &Service{b: b, cfg: cfg, info: info, log: cfg.Logger, arrays: map[string]*array{}}, nil
}

// Register serves the service on d under [ObjectID] and returns its URI.
// d must be serving (its address known). Each array is registered on d
// too, as an object of its own (PYRO:obj_<hex>@host:port) with the
// methods Info and Read.
func (s *Service) Register(d *daemon.Daemon) (gopyro.URI, error) {
	s.mu.Lock()
	if s.d != nil {
		s.mu.Unlock()
		return gopyro.URI{}, fmt.Errorf("gpu: the service is already registered")
	}
	s.d = d
	s.mu.Unlock()
	return d.RegisterFactory(daemon.Session, s.newSession, daemon.WithID(ObjectID))
}

// Info describes the backend, the limits and the memory in use.
func (s *Service) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.info
	in.Used, in.Arrays = s.used, len(s.arrays)
	return in
}

// Close frees every array and closes the backend.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	arrs := make([]*array, 0, len(s.arrays))
	for _, a := range s.arrays {
		arrs = append(arrs, a)
	}
	s.mu.Unlock()
	for _, a := range arrs {
		s.destroy(a)
	}
	return s.b.Close()
}

func (s *Service) newSession() *Session {
	return &Session{s: s, arrays: map[*array]struct{}{}}
}

// alloc reserves memory for a new array of t and shape, owned by ss,
// allocates it (its contents are undefined: the caller sets them all),
// and registers it.
func (s *Service) alloc(ctx context.Context, ss *Session, t DType, shape Shape) (*array, error) {
	return s.allocate(ctx, ss, t, shape, false)
}

// allocate is alloc; zero asks for zeroed contents.
func (s *Service) allocate(ctx context.Context, ss *Session, t DType, shape Shape, zero bool) (*array, error) {
	if !t.Valid() {
		return nil, newErr(ErrDType, "unknown element type %d (want float32, float64, int32 or int64)", t)
	}
	n, err := shape.check(t.Size(), s.cfg.MaxArray)
	if err != nil {
		return nil, err
	}
	bytes := int64(n) * int64(t.Size())
	a := &array{t: t, shape: slices.Clone(shape), n: n, bytes: bytes, owner: ss, holders: map[*Session]struct{}{ss: {}}}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, &gopyro.Error{Code: gopyro.CodeClosed, Op: "gpu", Message: "the service is closing"}
	case s.used+bytes > s.cfg.MaxMemory:
		s.mu.Unlock()
		return nil, newErr(ErrOutOfMemory, "an array of %s would pass the service's memory limit: %s of %s in use",
			FormatBytes(bytes), FormatBytes(s.used), FormatBytes(s.cfg.MaxMemory))
	case ss.used+bytes > s.cfg.SessionMemory:
		s.mu.Unlock()
		return nil, newErr(ErrOutOfMemory, "an array of %s would pass this session's memory limit: %s of %s in use",
			FormatBytes(bytes), FormatBytes(ss.used), FormatBytes(s.cfg.SessionMemory))
	case len(ss.arrays) >= s.cfg.MaxArrays:
		s.mu.Unlock()
		return nil, newErr(ErrOutOfMemory, "this session holds its maximum of %d arrays: free some", s.cfg.MaxArrays)
	}
	s.used += bytes
	ss.used += bytes
	ss.arrays[a] = struct{}{}
	d := s.d
	s.mu.Unlock()

	h, err := s.b.Alloc(ctx, t, n, zero)
	if err == nil {
		a.h = h
		a.ref, err = d.Ref(&arrayObject{s: s, a: a})
	}
	if err != nil {
		s.mu.Lock()
		s.used -= bytes
		ss.used -= bytes
		delete(ss.arrays, a)
		s.mu.Unlock()
		if h != 0 {
			_ = s.b.Free(h)
		}
		return nil, err
	}
	a.id = a.ref.URI.Object
	s.mu.Lock()
	s.arrays[a.id] = a
	closed := s.closed || ss.closed
	s.mu.Unlock()
	if closed { // the session or the service ended meanwhile
		s.release(ss, a)
		return nil, &gopyro.Error{Code: gopyro.CodeClosed, Op: "gpu", Message: "the session is closed"}
	}
	return a, nil
}

// release drops ss's hold on a; the last hold frees it.
func (s *Service) release(ss *Session, a *array) bool {
	s.mu.Lock()
	if _, ok := a.holders[ss]; !ok {
		s.mu.Unlock()
		return false
	}
	delete(a.holders, ss)
	delete(ss.arrays, a)
	last := len(a.holders) == 0
	if a.owner == ss {
		ss.used -= a.bytes
		a.owner = nil
		for h := range a.holders { // the charge moves to another holder
			a.owner = h
			h.used += a.bytes
			break
		}
	}
	s.mu.Unlock()
	if last {
		s.destroy(a)
	}
	return true
}

// destroy frees a on the backend and forgets it, once no operation uses it.
func (s *Service) destroy(a *array) {
	a.mu.Lock()
	s.mu.Lock()
	if a.freed {
		s.mu.Unlock()
		a.mu.Unlock()
		return
	}
	a.freed = true
	delete(s.arrays, a.id)
	s.used -= a.bytes
	if a.owner != nil {
		a.owner.used -= a.bytes
		delete(a.owner.arrays, a)
		a.owner = nil
	}
	for h := range a.holders {
		delete(h.arrays, a)
	}
	clear(a.holders)
	d := s.d
	s.mu.Unlock()
	if err := s.b.Free(a.h); err != nil {
		s.log.Warn("gpu: free", "array", a.id, "err", err)
	}
	a.mu.Unlock()
	if d != nil && a.id != "" {
		_ = d.Unregister(a.id)
	}
}

// lookup finds the array a reference names.
func (s *Service) lookup(ref daemon.Ref, what string) (*array, error) {
	id := ref.URI.Object
	s.mu.Lock()
	a, ok := s.arrays[id]
	s.mu.Unlock()
	if !ok {
		if id == "" {
			return nil, newErr(ErrFreed, "%s: no array given", what)
		}
		return nil, newErr(ErrFreed, "%s: %s is not an array of this service (freed, its sessions ended, or another service's)", what, id)
	}
	return a, nil
}

// locked holds the locks of an operation's arrays: written ones
// exclusively, the rest shared, taken in the order of their ids.
type locked struct {
	arrs  []*array
	write []bool
}

func (s *Service) lock(what string, reads, writes []*array) (*locked, error) {
	l := &locked{}
	add := func(a *array, w bool) {
		if i := slices.Index(l.arrs, a); i >= 0 {
			l.write[i] = l.write[i] || w
			return
		}
		l.arrs = append(l.arrs, a)
		l.write = append(l.write, w)
	}
	for _, a := range writes {
		add(a, true)
	}
	for _, a := range reads {
		add(a, false)
	}
	idx := make([]int, len(l.arrs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int { return cmp.Compare(l.arrs[i].id, l.arrs[j].id) })
	for k, i := range idx {
		a := l.arrs[i]
		if l.write[i] {
			a.mu.Lock()
		} else {
			a.mu.RLock()
		}
		if a.freed {
			for _, j := range idx[:k+1] {
				l.unlockOne(j)
			}
			return nil, newErr(ErrFreed, "%s: array %s was freed", what, a.id)
		}
	}
	return l, nil
}

func (l *locked) unlockOne(i int) {
	if l.write[i] {
		l.arrs[i].mu.Unlock()
	} else {
		l.arrs[i].mu.RUnlock()
	}
}

func (l *locked) unlock() {
	for i := range l.arrs {
		l.unlockOne(i)
	}
}

// parse returns the parsed expression for src, cached.
func (s *Service) parse(src string) (*Expr, error) {
	if e, ok := s.exprs.Load(src); ok {
		return e.(*Expr), nil
	}
	e, err := ParseExpr(src)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.nexpr < 4096 { // a bound on the cache; past it, parse each time
		s.nexpr++
		s.exprs.Store(src, e)
	}
	s.mu.Unlock()
	return e, nil
}

// ArrayInfo describes an array: the reference that names it (feed it to
// further calls), its element type and shape.
type ArrayInfo struct {
	Ref   daemon.Ref `msgpack:"ref"`
	DType DType      `msgpack:"dtype"`
	Shape Shape      `msgpack:"shape"`
}

func (a *array) info() ArrayInfo { return ArrayInfo{Ref: a.ref, DType: a.t, Shape: a.shape} }

// arrayObject is the remote object an array is registered as: a holder
// of its reference can ask what it is and read it.
type arrayObject struct {
	s *Service
	a *array
}

// Info describes the array.
func (o *arrayObject) Info() ArrayInfo { return o.a.info() }

// Read returns n bytes of the array's data from byte offset off.
func (o *arrayObject) Read(ctx context.Context, off int64, n int) ([]byte, error) {
	return o.s.read(ctx, o.a, off, n)
}

func (s *Service) read(ctx context.Context, a *array, off int64, n int) ([]byte, error) {
	if n < 0 || n > s.cfg.Chunk {
		return nil, errorf(gopyro.CodeArgument, "read of %d bytes: one read moves 0 to %d bytes", n, s.cfg.Chunk)
	}
	if off < 0 || off+int64(n) > a.bytes {
		return nil, newErr(ErrShape, "bytes %d to %d are outside array %s of %d bytes", off, off+int64(n), a.id, a.bytes)
	}
	l, err := s.lock("read", []*array{a}, nil)
	if err != nil {
		return nil, err
	}
	defer l.unlock()
	buf := make([]byte, n)
	if err := s.b.Read(ctx, a.h, off, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func names(args []Arg) string {
	var ns []string
	for _, a := range args {
		ns = append(ns, a.Name)
	}
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(ns, ", ")
}
