package classic

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"io"
	"net/rpc"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"github.com/traefik/yaegi/stdlib/unrestricted"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/gopyro/gopyro/internal/wire"
)

// handshake is go-plugin's handshake between the server and its workers.
// The cookie also marks a process as a worker ([IsWorker]).
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "GOPYRO_CLASSIC_WORKER",
	MagicCookieValue: "5f1c3a0e-classic-worker",
}

// envMemory carries the worker's memory limit in bytes.
const envMemory = "GOPYRO_CLASSIC_WORKER_MEMORY"

// The worker's file descriptors, set up by the server (exec.Cmd.ExtraFiles).
const (
	fdControl = 3 // the request socket
	fdStdout  = 4 // the write end of the stdout pipe, moved onto fd 1
	fdStderr  = 5 // the write end of the stderr pipe, moved onto fd 2
)

// IsWorker reports whether this process was started by a classic server
// as a session worker. A program that serves classic sessions with the
// default [Config.WorkerCommand] calls [ServeWorker] early in main when
// IsWorker is true:
//
//	func main() {
//		if classic.IsWorker() {
//			classic.ServeWorker() // does not return
//		}
//		...
//	}
func IsWorker() bool { return os.Getenv(handshake.MagicCookieKey) == handshake.MagicCookieValue }

// ServeWorker runs this process as a session worker: one interpreter
// serving the requests of one session. It exits when the server closes
// the session, kills the worker, or dies. It must only be called in a
// process started by a classic server.
func ServeWorker() {
	if !IsWorker() {
		fmt.Fprintln(os.Stderr, "gopyro classic worker: this command is started by a classic server, not by hand")
		os.Exit(2)
	}
	// Everything written to fds 1 and 2 from here on, by the script, the
	// runtime or any library, is the session's output: the server reads
	// the other ends of these pipes. go-plugin still needs the original
	// stdout for its handshake line.
	hs, err := syscall.Dup(1)
	if err == nil {
		err = errors.Join(syscall.Dup3(fdStdout, 1, 0), syscall.Dup3(fdStderr, 2, 0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gopyro classic worker: set up output:", err)
		os.Exit(2)
	}
	_ = syscall.Close(fdStdout)
	_ = syscall.Close(fdStderr)
	stdout, stderr := os.NewFile(1, "stdout"), os.NewFile(2, "stderr")
	os.Stdout = os.NewFile(uintptr(hs), "handshake")

	// No worker outlives its server: the kernel kills it when the server
	// dies (Pdeathsig, set by the server), and a watchdog catches what
	// Pdeathsig misses (it follows the thread that started the worker).
	go watchParent(os.Getppid())
	if n, err := strconv.ParseInt(os.Getenv(envMemory), 10, 64); err == nil && n > 0 {
		limitMemory(n)
	}

	w := &worker{ready: make(chan struct{}), stdout: stdout, stderr: stderr}
	go w.serve(os.NewFile(fdControl, "control"))
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{"control": &controlPlugin{w: w}},
		Logger:          hclog.NewNullLogger(),
	})
	os.Exit(0)
}

// limitMemory caps the memory the worker takes from now on at n bytes:
// the Go runtime's soft limit makes the collector work hard near it, and
// RLIMIT_DATA (counted from the data size the process starts with, which
// a race-detector build makes large) makes an allocation past it fail,
// which ends the process ("out of memory").
func limitMemory(n int64) {
	debug.SetMemoryLimit(n - n/8)
	base := vmData()
	lim := &syscall.Rlimit{Cur: uint64(base + n), Max: uint64(base + n)}
	_ = syscall.Setrlimit(syscall.RLIMIT_DATA, lim)
}

// vmData returns the process's data size (VmData), in bytes.
func vmData() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmData:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// watchParent exits when the parent process is gone (the worker was
// re-parented).
func watchParent(ppid int) {
	for {
		time.Sleep(500 * time.Millisecond)
		if os.Getppid() != ppid {
			os.Exit(3)
		}
	}
}

// controlPlugin is the go-plugin side of a worker: a net/rpc service the
// server calls once, to learn the worker is ready.
type controlPlugin struct{ w *worker }

func (p *controlPlugin) Server(*plugin.MuxBroker) (any, error) { return &controlServer{p.w}, nil }

func (p *controlPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return &controlClient{c}, nil
}

type controlServer struct{ w *worker }

// Hello makes the worker ready to serve requests and returns its pid.
func (s *controlServer) Hello(_ int, pid *int) error {
	s.w.start()
	*pid = os.Getpid()
	return nil
}

type controlClient struct{ c *rpc.Client }

func (c *controlClient) hello() (int, error) {
	var pid int
	err := c.c.Call("Plugin.Hello", 0, &pid)
	return pid, err
}

// worker serves one session's requests with one interpreter.
type worker struct {
	once           sync.Once
	ready          chan struct{}
	stdout, stderr *os.File
	in             *interp.Interpreter
	catch          *panicCatcher
	imported       map[string]bool // import paths
	declared       map[string]bool // top-level names of the session
}

// start runs once go-plugin has taken os.Stdout and os.Stderr for its
// own stdio forwarding: the script's os.Stdout and os.Stderr are the
// captured file descriptors again.
func (w *worker) start() {
	w.once.Do(func() {
		os.Stdout, os.Stderr = w.stdout, w.stderr
		w.catch = &panicCatcher{w: w.stderr}
		w.in = interp.New(interp.Options{Stdout: w.stdout, Stderr: w.catch, Unrestricted: true})
		if err := w.in.Use(stdlib.Symbols); err == nil {
			_ = w.in.Use(unrestricted.Symbols)
		}
		w.imported, w.declared = map[string]bool{}, map[string]bool{}
		close(w.ready)
	})
}

// serve answers requests until the socket closes; then the worker exits.
func (w *worker) serve(f *os.File) {
	c := newFrameConn(f)
	<-w.ready
	for {
		var req wRequest
		if err := c.read(&req); err != nil {
			os.Exit(0) // the server closed the session or died
		}
		rep := w.handle(&req)
		if err := c.write(rep); err != nil {
			// A value too large to send: say so instead.
			rep = &wReply{Err: &failure{Kind: kindValue, Msg: err.Error()}}
			if c.write(rep) != nil {
				os.Exit(0)
			}
		}
		if rep.Lost != "" {
			// The server kills the worker; do not run anything else.
			select {}
		}
	}
}

func (w *worker) handle(req *wRequest) *wReply {
	ctx := context.Background()
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout))
		defer cancel()
	}
	switch req.Op {
	case opExec:
		return w.exec(ctx, req.Src)
	case opEval:
		return w.eval(ctx, req.Src)
	case opCall:
		return w.call(ctx, req.Src, req.Args)
	}
	return &wReply{Err: &failure{Kind: kindProtocol, Msg: "unknown operation " + strconv.Quote(req.Op)}}
}

// exec runs code: statements, declarations and imports, in order.
func (w *worker) exec(ctx context.Context, code string) *wReply {
	if strings.HasPrefix(strings.TrimSpace(code), "package ") {
		// A whole file: the interpreter runs its main, if any.
		_, rep := w.run(ctx, unit{kind: declUnit, src: code, line: 1}, true)
		return rep
	}
	if what := unsupported(code); what != "" {
		return &wReply{Err: unsupportedFailure(what)}
	}
	for _, u := range split(code) {
		if rep := w.autoImport(ctx, u); rep != nil {
			return rep
		}
		if _, rep := w.run(ctx, u, false); rep != nil {
			return rep
		}
		w.learn(u)
	}
	return &wReply{}
}

// eval evaluates one expression and returns its value.
func (w *worker) eval(ctx context.Context, expr string) *wReply {
	if _, err := parser.ParseExpr(expr); err != nil {
		return &wReply{Err: &failure{Kind: kindCompile, Msg: "not an expression: " + mapPositions(err.Error(), unit{line: 1}, 0)}}
	}
	if what := unsupported(expr); what != "" {
		return &wReply{Err: unsupportedFailure(what)}
	}
	u := unit{kind: stmtUnit, src: expr, line: 1}
	if rep := w.autoImport(ctx, u); rep != nil {
		return rep
	}
	v, rep := w.run(ctx, u, false)
	if rep != nil {
		return rep
	}
	return encodeValue(v)
}

// call calls the function named name with the arguments in args (a
// msgpack array), converted to its parameter types.
func (w *worker) call(ctx context.Context, name string, args []byte) *wReply {
	if _, err := parser.ParseExpr(name); err != nil {
		return &wReply{Err: &failure{Kind: kindCompile, Msg: "not a function name: " + strconv.Quote(name)}}
	}
	u := unit{kind: stmtUnit, src: name, line: 1}
	if rep := w.autoImport(ctx, u); rep != nil {
		return rep
	}
	fv, rep := w.run(ctx, u, false)
	if rep != nil {
		return rep
	}
	if !fv.IsValid() || fv.Kind() != reflect.Func {
		t := "nothing"
		if fv.IsValid() {
			t = fv.Type().String()
		}
		return &wReply{Err: &failure{Kind: kindNotFound, Msg: fmt.Sprintf("%s is a %s, not a function", name, t)}}
	}
	in, err := callArgs(fv.Type(), args)
	if err != nil {
		return &wReply{Err: &failure{Kind: kindArgument, Msg: fmt.Sprintf("call %s: %v", name, err)}}
	}
	var out []reflect.Value
	perr := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		out = fv.Call(in)
		return nil
	}()
	if perr != nil {
		return &wReply{Err: &failure{Kind: kindPanic, Msg: fmt.Sprintf("%s panicked: %v", name, perr)}}
	}
	ft := fv.Type()
	if n := ft.NumOut(); n > 0 && ft.Out(n-1) == errorType {
		if e := out[n-1]; !e.IsNil() {
			return &wReply{Err: &failure{Kind: kindPanic, Msg: fmt.Sprintf("%s returned an error: %v", name, e.Interface())}}
		}
		out = out[:n-1]
	}
	switch len(out) {
	case 0:
		return &wReply{}
	case 1:
		return encodeValue(out[0])
	}
	vals := make([]any, len(out))
	for i, o := range out {
		if err := sendable(o); err != nil {
			return &wReply{Err: &failure{Kind: kindValue, Msg: err.Error()}}
		}
		vals[i] = o.Interface()
	}
	return encodeValue(reflect.ValueOf(vals))
}

var errorType = reflect.TypeFor[error]()

// autoImport imports the standard packages u uses by name and has not
// imported yet, unless the session declared that name itself.
func (w *worker) autoImport(ctx context.Context, u unit) *wReply {
	if u.kind == importUnit {
		return nil
	}
	var paths []string
	for _, name := range usedPackages(u.src) {
		if w.declared[name] {
			continue
		}
		if p, ok := stdPackages()[name]; ok && !w.imported[p] {
			paths = append(paths, p)
		}
	}
	for _, p := range paths {
		if _, rep := w.run(ctx, unit{kind: importUnit, src: "import " + strconv.Quote(p), line: u.line}, false); rep != nil {
			return rep
		}
		w.imported[p] = true
	}
	return nil
}

// learn records what a unit that ran declared or imported.
func (w *worker) learn(u unit) {
	if u.kind == importUnit {
		for _, t := range scan(u.src) {
			if p, err := strconv.Unquote(t.lit); err == nil && t.lit != "" && t.lit[0] == '"' {
				w.imported[p] = true
			}
		}
		return
	}
	for _, n := range declaredNames(u.src) {
		w.declared[n] = true
	}
}

// run evaluates one unit, turning every failure into a reply.
func (w *worker) run(ctx context.Context, u unit, file bool) (reflect.Value, *wReply) {
	w.catch.begin()
	v, err := w.in.EvalWithContext(ctx, u.src)
	frames := w.catch.end()
	if err == nil {
		return v, nil
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		if still := w.stillRunning(); still {
			return v, &wReply{Lost: "the code ran past its deadline and the interpreter could not be stopped (a compiled call or a goroutine of the script is still running)"}
		}
		return v, &wReply{Err: &failure{Kind: kindTimeout, Msg: "the code ran past its deadline and was stopped; the session goes on"}}
	}
	prefix := 27 // len("package main; func main() {")
	if u.kind != stmtUnit || file {
		prefix = 13 // len("package main;")
	}
	var p interp.Panic
	if errors.As(err, &p) {
		msg := fmt.Sprint(p.Value)
		if msg == "nil type" { // the interpreter's own crash on what it lacks
			return v, &wReply{Err: unsupportedFailure("a construct the interpreter does not support (for example range over an int or a func)")}
		}
		var where []string
		for _, f := range frames {
			where = append(where, mapPositions(f, u, prefix))
		}
		if len(where) > 0 {
			msg += " (" + where[len(where)-1] + ")"
		}
		return v, &wReply{Err: &failure{Kind: kindPanic, Msg: "panic: " + msg, Stack: strings.Join(where, "\n")}}
	}
	msg := mapPositions(err.Error(), u, prefix)
	if m := builtinMissing.FindStringSubmatch(msg); m != nil {
		return v, &wReply{Err: unsupportedFailure(msg + ": the interpreter has no " + m[1] + " builtin (Go 1.21); write it out")}
	}
	return v, &wReply{Err: &failure{Kind: kindCompile, Msg: msg}}
}

var builtinMissing = regexp.MustCompile(`undefined: (min|max|clear)\b`)

func unsupportedFailure(what string) *failure {
	return &failure{Kind: kindUnsupported, Msg: "unsupported by the interpreter (yaegi): " + what}
}

// stillRunning reports whether interpreted code still runs a moment after
// a deadline stopped the interpreter: a compiled call it made (a sleep,
// a read) or a goroutine it started.
func (w *worker) stillRunning() bool {
	buf := make([]byte, 1<<20)
	for range 50 {
		n := runtime.Stack(buf, true)
		if !strings.Contains(string(buf[:n]), "yaegi/interp.runCfg") {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// position is "L:C: " at the start of an interpreter message, with or
// without the file name the parser adds.
var position = regexp.MustCompile(`^(?:_\.go:)?(\d+):(\d+): ?`)

// mapPositions rewrites the position at the start of msg from the
// interpreter's wrapped source to the user's code: "line L:C: ...".
func mapPositions(msg string, u unit, prefix int) string {
	m := position.FindStringSubmatchIndex(msg)
	if m == nil {
		return msg
	}
	line, _ := strconv.Atoi(msg[m[2]:m[3]])
	col, _ := strconv.Atoi(msg[m[4]:m[5]])
	if line == 1 && col > prefix {
		col -= prefix
	}
	if n := strings.Count(strings.TrimRight(u.src, "\n"), "\n") + 1; line > n {
		line = n // the wrapper's closing brace: the end of the code
	}
	return fmt.Sprintf("line %d:%d: %s", u.line+line-1, col, msg[m[1]:])
}

// panicCatcher is the interpreter's stderr: it passes output on, and
// keeps the "L:C: panic: ..." frames the interpreter prints while a
// panic unwinds, for the error.
type panicCatcher struct {
	w      io.Writer
	mu     sync.Mutex
	frames []string
	on     bool
}

var panicFrame = regexp.MustCompile(`^\d+:\d+: panic: `)

func (c *panicCatcher) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.on && panicFrame.Match(p) {
		if len(c.frames) < 64 {
			c.frames = append(c.frames, strings.TrimSpace(string(p)))
		}
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.w.Write(p)
}

func (c *panicCatcher) begin() {
	c.mu.Lock()
	c.on, c.frames = true, nil
	c.mu.Unlock()
}

func (c *panicCatcher) end() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = false
	return c.frames
}

// encodeValue sends v, or says why it cannot be sent.
func encodeValue(v reflect.Value) *wReply {
	if !v.IsValid() {
		return &wReply{Value: []byte{0xc0}} // nil
	}
	if err := sendable(v); err != nil {
		return &wReply{Err: &failure{Kind: kindValue, Msg: err.Error()}}
	}
	b, err := msgpack.Marshal(v.Interface())
	if err != nil {
		return &wReply{Err: &failure{Kind: kindValue, Msg: fmt.Sprintf("a value of type %s cannot be sent: %v", v.Type(), err)}}
	}
	return &wReply{Value: b}
}

// sendable says why v cannot travel, naming the type: channels, funcs and
// unsafe pointers stay in the session.
func sendable(v reflect.Value) error {
	if bad := unsendable(v.Type(), map[reflect.Type]bool{}); bad != nil {
		what := bad.String()
		if bad != v.Type() {
			what = v.Type().String() + " (it holds a " + bad.String() + ")"
		}
		return fmt.Errorf("a value of type %s cannot be sent: channels, funcs and unsafe pointers stay in the session", what)
	}
	return nil
}

func unsendable(t reflect.Type, seen map[reflect.Type]bool) reflect.Type {
	if seen[t] {
		return nil
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return t
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return unsendable(t.Elem(), seen)
	case reflect.Map:
		if b := unsendable(t.Key(), seen); b != nil {
			return b
		}
		return unsendable(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				if b := unsendable(f.Type, seen); b != nil {
					return b
				}
			}
		}
	}
	return nil
}

// callArgs decodes a msgpack array into arguments for a function of type
// ft, converted to its parameter types by the wire's decoder (the same
// range checks as any gopyro call: 300 does not fit an int8).
func callArgs(ft reflect.Type, payload []byte) ([]reflect.Value, error) {
	if len(payload) == 0 {
		payload = []byte{0x90} // no arguments
	}
	if err := wire.Validate(payload); err != nil {
		return nil, fmt.Errorf("bad arguments: %v", err)
	}
	d, err := wire.NewDecoder(payload)
	if err != nil {
		return nil, fmt.Errorf("bad arguments: %v", err)
	}
	defer d.Release()
	n, got := ft.NumIn(), d.Len()
	if ft.IsVariadic() {
		if got < n-1 {
			return nil, fmt.Errorf("want at least %d arguments, got %d", n-1, got)
		}
	} else if got != n {
		return nil, fmt.Errorf("want %d arguments, got %d", n, got)
	}
	in := make([]reflect.Value, got)
	for i := range got {
		t := ft.In(min(i, n-1))
		if ft.IsVariadic() && i >= n-1 {
			t = t.Elem()
		}
		v := reflect.New(t).Elem()
		if err := d.Next(i, v); err != nil {
			return nil, err
		}
		in[i] = v
	}
	return in, nil
}

// stdPackages maps a package name to the import path of the standard
// library package the interpreter has under that name; where two share
// a name, the one people mean more often wins.
var stdPackages = sync.OnceValue(func() map[string]string {
	prefer := map[string]string{"rand": "math/rand", "template": "text/template", "scanner": "text/scanner", "pprof": "runtime/pprof"}
	keys := make([]string, 0, len(stdlib.Symbols)+len(unrestricted.Symbols))
	for k := range stdlib.Symbols {
		keys = append(keys, k)
	}
	for k := range unrestricted.Symbols { // os/exec
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := map[string]string{}
	for _, k := range keys {
		i := strings.LastIndexByte(k, '/')
		if i < 0 {
			continue
		}
		path, name := k[:i], k[i+1:]
		if old, ok := m[name]; ok && len(old) <= len(path) {
			continue
		}
		m[name] = path
	}
	for name, path := range prefer {
		m[name] = path
	}
	return m
})
