package classic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
)

// Defaults of [Config].
const (
	DefaultMaxSessions  = 64
	DefaultIdleTimeout  = 10 * time.Minute
	DefaultCallTimeout  = 10 * time.Minute
	DefaultWorkerMemory = 1 << 30
	DefaultWarm         = 1
	DefaultStartTimeout = 10 * time.Second
)

// Config holds a classic server's settings; the zero Config gives the
// defaults.
type Config struct {
	// MaxSessions bounds the open sessions (each is a worker process);
	// an Open over it fails with gopyro.ErrBusy. Default 64.
	MaxSessions int
	// IdleTimeout ends a session no call used for this long (its worker
	// is killed). Default 10m; negative: never.
	IdleTimeout time.Duration
	// CallTimeout bounds each Execute, Eval and Call whose caller set no
	// earlier deadline. Past it the code is stopped; if the interpreter
	// cannot be stopped (a goroutine of the script or a compiled call is
	// still running) the worker is killed and the session is lost.
	// Default 10m; negative: no bound.
	CallTimeout time.Duration
	// WorkerMemory caps each worker's memory, in bytes (the Go runtime's
	// soft limit and RLIMIT_DATA): code that allocates past it loses its
	// session. Default 1 GiB.
	WorkerMemory int64
	// Warm is how many started workers wait for the next sessions, so
	// that Open does not wait for a process to start. Default 1;
	// negative: none.
	Warm int
	// WorkerCommand makes the command that starts a worker. It must run
	// a program that calls [ServeWorker] (see [IsWorker]). Default: this
	// program (os.Executable) with no arguments.
	WorkerCommand func() *exec.Cmd
	// StartTimeout bounds a worker's start. Default 10s.
	StartTimeout time.Duration
	// Stdout and Stderr receive the sessions' output while it is not
	// redirected to their clients: the server's console. Default
	// os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// Logger receives the server's log lines. Default: discard.
	Logger *slog.Logger
}

func (c *Config) fill() {
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.WorkerMemory <= 0 {
		c.WorkerMemory = DefaultWorkerMemory
	}
	switch {
	case c.Warm == 0:
		c.Warm = DefaultWarm
	case c.Warm < 0:
		c.Warm = 0
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.WorkerCommand == nil {
		c.WorkerCommand = func() *exec.Cmd {
			exe, err := os.Executable()
			if err != nil {
				exe = os.Args[0]
			}
			return exec.Command(exe)
		}
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server serves classic sessions: remote execution of Go source, each
// session in its own worker process. This is remote code execution by
// design: bind it to loopback, or require a token or TLS.
type Server struct {
	cfg   Config
	dopts []daemon.Option

	ready chan struct{}
	done  chan struct{}
	once  sync.Once

	mu       sync.Mutex
	d        *daemon.Daemon
	sessions map[*Session]struct{}
	open     int // sessions holding a worker

	spawn chan chan spawned // requests for a worker
	pool  chan *process     // warm workers
	took  chan struct{}     // a warm worker was taken
	wg    sync.WaitGroup
}

type spawned struct {
	p   *process
	err error
}

// NewServer returns a server with cfg; opts configure the daemon that
// carries the sessions (token, TLS, limits).
func NewServer(cfg Config, opts ...daemon.Option) *Server {
	cfg.fill()
	s := &Server{cfg: cfg, ready: make(chan struct{}), done: make(chan struct{}),
		sessions: map[*Session]struct{}{}, spawn: make(chan chan spawned),
		pool: make(chan *process, cfg.Warm), took: make(chan struct{}, 1)}
	// The daemon closes connections idle for the sessions' idle time.
	idle := daemon.WithIdleTimeout(cfg.IdleTimeout)
	s.dopts = append([]daemon.Option{idle, daemon.WithLogger(cfg.Logger)}, opts...)
	return s
}

// Ready is closed once the server serves sessions.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the listener's address, once Ready.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d == nil {
		return nil
	}
	return s.d.Addr()
}

// URI is the URI of the session object, once Ready.
func (s *Server) URI() (gopyro.URI, error) {
	s.mu.Lock()
	d := s.d
	s.mu.Unlock()
	if d == nil {
		return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeInvalid, Op: "classic", Message: "the server is not serving yet"}
	}
	return d.URI(ObjectID)
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Serve serves sessions on ln until ctx is done or Close is called;
// then every worker is killed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	d, err := daemon.New(s.dopts...)
	if err != nil {
		ln.Close()
		return err
	}
	s.mu.Lock()
	s.d = d
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- d.Serve(ctx, ln) }()
	select {
	case <-d.Ready():
	case err := <-errc:
		return err
	}
	if _, err := d.RegisterFactory(daemon.Session, s.newSession, daemon.WithID(ObjectID)); err != nil {
		d.Close()
		<-errc
		return err
	}
	s.wg.Add(1)
	go s.spawner()
	close(s.ready)
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	err = <-errc
	s.Close()
	return err
}

// Shutdown stops taking new sessions and calls, lets the calls in flight
// finish (or ctx end), then closes the server as Close does.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	d := s.d
	s.mu.Unlock()
	var err error
	if d != nil {
		err = d.Shutdown(ctx)
	}
	return errors.Join(err, s.Close())
}

// Close stops the server: connections close and every worker is killed.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.mu.Lock()
		d := s.d
		sessions := make([]*Session, 0, len(s.sessions))
		for ss := range s.sessions {
			sessions = append(sessions, ss)
		}
		s.mu.Unlock()
		if d != nil {
			_ = d.Close()
		}
		for _, ss := range sessions {
			ss.end("the server closed")
		}
		s.wg.Wait()
	})
	return nil
}

// spawner starts every worker, from one goroutine locked to its thread:
// the kernel's parent-death signal follows the thread that started a
// process, and this thread lives as long as the server.
func (s *Server) spawner() {
	defer s.wg.Done()
	runtime.LockOSThread()
	defer func() {
		for {
			select {
			case p := <-s.pool:
				p.kill()
			default:
				return
			}
		}
	}()
	failed := false
	for {
		if !failed && len(s.pool) < cap(s.pool) {
			p, err := s.start()
			if err != nil {
				s.cfg.Logger.Warn("classic: cannot start a warm worker", "err", err)
				failed = true
				continue
			}
			s.pool <- p // only the spawner adds: there is room
			continue
		}
		select {
		case req := <-s.spawn:
			p, err := s.start()
			failed = err != nil
			req <- spawned{p, err}
		case <-s.took:
			failed = false
		case <-s.done:
			return
		}
	}
}

func (s *Server) start() (*process, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StartTimeout)
	defer cancel()
	return startProcess(ctx, s.cfg.WorkerCommand(), s.cfg.WorkerMemory, s.cfg.StartTimeout)
}

// worker returns a warm worker, or starts one.
func (s *Server) worker(ctx context.Context) (*process, error) {
	for {
		select {
		case p := <-s.pool:
			select {
			case s.took <- struct{}{}:
			default:
			}
			select {
			case <-p.exited: // died while waiting: take another
				p.kill()
				continue
			default:
			}
			return p, nil
		default:
		}
		req := make(chan spawned, 1)
		select {
		case s.spawn <- req:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, errors.New("the server closed")
		}
		r := <-req
		return r.p, r.err
	}
}

// reserve counts a session in, or fails with gopyro.ErrBusy.
func (s *Server) reserve() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open >= s.cfg.MaxSessions {
		return &gopyro.Error{Code: gopyro.CodeBusy, Op: "classic open",
			Message: fmt.Sprintf("the server has its maximum of %d sessions open", s.cfg.MaxSessions)}
	}
	s.open++
	return nil
}

func (s *Server) release(ss *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[ss]; ok {
		delete(s.sessions, ss)
		s.open--
	}
}
