package classic

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
)

// process is one running worker, seen from the server.
type process struct {
	client *plugin.Client
	cmd    *exec.Cmd
	pid    int
	ctl    *os.File
	conn   *frameConn
	out    [2]*outPipe // the worker's stdout and stderr
	memory int64

	mu sync.Mutex // one request at a time

	killOnce sync.Once
	watching bool          // watch runs; set before any kill
	exited   chan struct{} // closed once the process has exited
	status   string        // how it exited; set before exited closes
}

// startProcess starts a worker with cmd (its stdin, stdout, stderr,
// ExtraFiles and Env are set here) and waits for its handshake.
func startProcess(ctx context.Context, cmd *exec.Cmd, memory int64, timeout time.Duration) (*process, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket pair: %w", err)
	}
	ctl, wctl := os.NewFile(uintptr(fds[0]), "control"), os.NewFile(uintptr(fds[1]), "worker control")
	outR, outW, err := os.Pipe()
	if err != nil {
		ctl.Close()
		wctl.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		ctl.Close()
		wctl.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	closeWorkerEnds := func() { wctl.Close(); outW.Close(); errW.Close() }
	cmd.ExtraFiles = []*os.File{wctl, outW, errW} // fds 3, 4, 5
	cmd.Env = append(cmd.Env, envMemory+"="+strconv.FormatInt(memory, 10))
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p := &process{cmd: cmd, ctl: ctl, conn: newFrameConn(ctl), memory: memory, exited: make(chan struct{}),
		out: [2]*outPipe{newOutPipe(outR), newOutPipe(errR)}}
	p.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{"control": &controlPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC},
		Logger:           hclog.NewNullLogger(),
		StartTimeout:     timeout,
		SyncStdout:       io.Discard,
		SyncStderr:       io.Discard,
	})
	fail := func(err error) (*process, error) {
		closeWorkerEnds()
		p.kill()
		return nil, err
	}
	rc, err := p.client.Client() // starts the process, reads its handshake
	if err != nil {
		return fail(fmt.Errorf("start worker %s: %w", cmd.Path, err))
	}
	closeWorkerEnds()
	p.watching = true
	go p.watch()
	raw, err := rc.Dispense("control")
	if err != nil {
		return fail(fmt.Errorf("worker handshake: %w", err))
	}
	type helloResult struct {
		pid int
		err error
	}
	done := make(chan helloResult, 1)
	go func() {
		pid, err := raw.(*controlClient).hello()
		done <- helloResult{pid, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return fail(fmt.Errorf("worker hello: %w", r.err))
		}
		p.pid = r.pid
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	return p, nil
}

// watch records how the process exited.
func (p *process) watch() {
	for !p.client.Exited() {
		time.Sleep(20 * time.Millisecond)
	}
	// go-plugin has waited for the process: ProcessState is set.
	p.status = exitStatus(p.cmd.ProcessState)
	close(p.exited)
}

func exitStatus(ps *os.ProcessState) string {
	if ps == nil {
		return "exited"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "was killed by signal " + ws.Signal().String()
	}
	return "exited with status " + strconv.Itoa(ps.ExitCode())
}

// kill ends the process at once and closes the server's ends.
func (p *process) kill() {
	p.killOnce.Do(func() {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
		}
		if p.watching {
			// Once the process is gone its connection has ended, and
			// go-plugin's cleanup does not write to it (yamux would log
			// the failed write).
			select {
			case <-p.exited:
			case <-time.After(2 * time.Second):
			}
		}
		p.client.Kill()
		p.ctl.Close()
	})
}

// do sends one request and waits for its reply. A worker that dies, or
// does not answer by the deadline plus grace, fails the call with
// errWorkerGone (the caller then reports why).
func (p *process) do(ctx context.Context, req *wRequest, grace time.Duration) (*wReply, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		req.Timeout = int64(max(time.Until(dl), time.Millisecond))
		// The worker stops the code at the deadline; if it does not
		// answer soon after, it is killed.
		_ = p.ctl.SetDeadline(dl.Add(grace))
		defer p.ctl.SetDeadline(time.Time{})
	}
	if err := p.conn.write(req); err != nil {
		return nil, errWorkerGone{err}
	}
	var rep wReply
	if err := p.conn.read(&rep); err != nil {
		return nil, errWorkerGone{err}
	}
	return &rep, nil
}

type errWorkerGone struct{ err error }

func (e errWorkerGone) Error() string { return "worker gone: " + e.err.Error() }

// deathReason waits briefly for the process to end and says why it did,
// from its exit status and the end of its stderr.
func (p *process) deathReason(tail []byte) string {
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
		p.kill()
		<-p.exited
	}
	s := p.status
	t := string(tail)
	switch {
	case strings.Contains(t, "out of memory") || strings.Contains(t, "cannot allocate memory"):
		return fmt.Sprintf("ran out of memory (the worker limit is %s) and %s", sizeString(p.memory), s)
	case strings.Contains(t, "fatal error: "):
		return s + ": " + firstLineWith(t, "fatal error: ")
	case strings.Contains(t, "panic: "):
		return s + " after a panic the interpreter did not catch: " + firstLineWith(t, "panic: ")
	}
	return s
}

func firstLineWith(s, sub string) string {
	i := strings.Index(s, sub)
	s = s[i:]
	if j := strings.IndexByte(s, '\n'); j >= 0 {
		s = s[:j]
	}
	return s
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// outPipe is the server's end of a worker's stdout or stderr. It counts
// the bytes read, under a lock that also covers each read, so that the
// bytes written so far (read plus waiting in the pipe) can be known
// exactly: see mark.
type outPipe struct {
	f  *os.File
	rc syscall.RawConn
	mu sync.Mutex
	n  int64 // bytes read
}

func newOutPipe(f *os.File) *outPipe {
	rc, _ := f.SyscallConn() // an *os.File from os.Pipe always has one
	return &outPipe{f: f, rc: rc}
}

// read reads what the pipe has, up to len(buf), waiting for at least one
// byte. It returns io.EOF once every writer has closed.
func (p *outPipe) read(buf []byte) (int, int64, error) {
	var n int
	var end int64
	var rerr error
	err := p.rc.Read(func(fd uintptr) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		n, rerr = syscall.Read(int(fd), buf)
		if rerr == syscall.EAGAIN || rerr == syscall.EINTR {
			return false
		}
		if n > 0 {
			p.n += int64(n)
		}
		end = p.n
		return true
	})
	switch {
	case err != nil:
		return 0, 0, err
	case rerr != nil:
		return 0, 0, rerr
	case n <= 0:
		return 0, end, io.EOF
	}
	return n, end, nil
}

// mark returns the offset just past every byte written to the pipe so
// far: those read plus those waiting.
func (p *outPipe) mark() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var waiting int32
	_ = p.rc.Control(func(fd uintptr) {
		_, _, _ = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&waiting)))
	})
	return p.n + int64(waiting)
}

// tail keeps the last bytes written to it, and the last line that
// starts a crash report ("fatal error: ...", "panic: ...", the runtime's
// "out of memory"), which the stack dump after it would push out.
type tail struct {
	mu    sync.Mutex
	buf   []byte
	max   int
	crash string
	line  []byte // the unfinished last line
}

var crashStarts = []string{"fatal error: ", "panic: ", "runtime: out of memory"}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	// Lines are checked whole: a pipe read may end mid-line.
	t.line = append(t.line, p...)
	for {
		i := bytes.IndexByte(t.line, '\n')
		if i < 0 {
			break
		}
		for _, s := range crashStarts {
			if bytes.HasPrefix(t.line[:i], []byte(s)) {
				t.crash = string(t.line[:min(i, 300)])
				break
			}
		}
		t.line = t.line[i+1:]
	}
	if len(t.line) > 300 {
		t.line = t.line[:300] // the start of a long line is enough
	}
	t.line = bytes.Clone(t.line)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = bytes.Clone(t.buf[over:])
	}
	return len(p), nil
}

// bytes returns the crash line (if any) and the last bytes.
func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(t.crash+"\n"+string(t.line)+"\n"), t.buf...)
}
