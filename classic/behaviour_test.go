package classic_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/classic"
	"github.com/gopyro/gopyro/internal/testutil"
)

// Output is streamed while the code runs: the first line reaches the
// client while the script still waits for the test to let it go on.
func TestStreamingWhileRunning(t *testing.T) {
	s, _, _ := serve(t, classic.Config{})
	c := connect(t, s)
	var mine testutil.Lines
	if err := c.RedirectStdout(&mine); err != nil {
		t.Fatal(err)
	}
	gate := filepath.Join(t.TempDir(), "go-on")
	done := make(chan error, 1)
	go func() {
		done <- c.Execute(ctx(t), fmt.Sprintf(`func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
fmt.Println("first")
for !exists(%q) {
	time.Sleep(5 * time.Millisecond)
}
fmt.Println("second")`, gate))
	}()
	testutil.WaitFor(t, 30*time.Second, "the first line at the client", func() bool {
		select {
		case err := <-done:
			t.Fatalf("Execute returned before the gate opened: %v", err)
		default:
		}
		return strings.Join(mine.All(), "|") == "first"
	})
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(mine.All(), "|"); got != "first|second" {
		t.Fatalf("got %q", got)
	}
}

// orderedLines checks that its input is the lines "0".."n-1" in order.
type orderedLines struct {
	mu      sync.Mutex
	partial []byte
	next    int
	err     error
}

func (o *orderedLines) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		if got := string(o.partial[:i]); got != strconv.Itoa(o.next) && o.err == nil {
			o.err = fmt.Errorf("line %d is %q", o.next, got)
		}
		o.next++
		o.partial = o.partial[i+1:]
	}
	return len(p), nil
}

// Nothing is lost: a million lines all arrive, in order, by the time
// Execute returns.
func TestMillionLines(t *testing.T) {
	s, _, _ := serve(t, classic.Config{})
	c := connect(t, s)
	var o orderedLines
	if err := c.RedirectStdout(&o); err != nil {
		t.Fatal(err)
	}
	const n = 1000000
	if err := c.Execute(ctx(t), `w := bufio.NewWriterSize(os.Stdout, 4096)
for i := 0; i < 1000000; i++ {
	w.WriteString(strconv.Itoa(i))
	w.WriteByte('\n')
}
w.Flush()`); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil || o.next != n || len(o.partial) != 0 {
		t.Fatalf("got %d lines (want %d), error %v, %d bytes left over", o.next, n, o.err, len(o.partial))
	}
}

// gatedWriter blocks every write until the test opens it.
type gatedWriter struct {
	open chan struct{}
	mu   sync.Mutex
	n    int
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	g.n += len(p)
	g.mu.Unlock()
	return len(p), nil
}

// A client that does not take its output slows the script down: the
// script blocks in its writes, and what waits between them is bounded.
func TestBackpressure(t *testing.T) {
	s, _, _ := serve(t, classic.Config{})
	c := connect(t, s)
	g := &gatedWriter{open: make(chan struct{})}
	if err := c.RedirectStdout(g); err != nil {
		t.Fatal(err)
	}
	progress := filepath.Join(t.TempDir(), "progress")
	const lines = 64 // of 1 MiB each
	done := make(chan error, 1)
	go func() {
		done <- c.Execute(ctx(t), fmt.Sprintf(`line := strings.Repeat("x", 1<<20-1)
for i := 1; i <= %d; i++ {
	fmt.Println(line)
	os.WriteFile(%q, []byte(strconv.Itoa(i)), 0o600)
}`, lines, progress))
	}()
	printed := func() int {
		b, _ := os.ReadFile(progress)
		n, _ := strconv.Atoi(string(b))
		return n
	}
	testutil.WaitFor(t, 20*time.Second, "the script started printing", func() bool { return printed() >= 1 })
	// Give it time to run ahead if nothing held it back.
	time.Sleep(time.Second)
	// Pipe (64 KiB) + one read + the server's 1 MiB outbox + one fetch in
	// flight to the client: a handful of lines at most.
	if n := printed(); n > 6 {
		t.Fatalf("the script printed %d MiB while the client took nothing", n)
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n != lines<<20 {
		t.Fatalf("client got %d bytes, want %d", g.n, lines<<20)
	}
}

// Declarations persist; imports are automatic or explicit; statements,
// declarations and imports mix in one Execute; println, os.Stdout.Write,
// log and stderr are all captured.
func TestSessionState(t *testing.T) {
	s, _, _ := serve(t, classic.Config{})
	c := connect(t, s)
	var out, errs testutil.Lines
	if err := c.RedirectStdout(&out); err != nil {
		t.Fatal(err)
	}
	if err := c.RedirectStderr(&errs); err != nil {
		t.Fatal(err)
	}
	code := `import "math"
type Point struct{ X, Y float64 }
func (p Point) Norm() float64 { return math.Hypot(p.X, p.Y) }
p := Point{3, 4}
fmt.Println("norm", p.Norm())
var total = 10
func Twice(n int) int { return 2 * n }
println("builtin println")
os.Stdout.Write([]byte("direct write\n"))
log.SetFlags(0)
log.Println("via log")
fmt.Fprintln(os.Stderr, "to stderr")`
	if err := c.Execute(ctx(t), code); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(out.All(), "|"), "norm 5|builtin println|direct write"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if got, want := strings.Join(errs.All(), "|"), "via log|to stderr"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	if n, err := classic.Eval[int](ctx(t), c, "Twice(total)"); err != nil || n != 20 {
		t.Errorf("Twice(total) = %d, %v", n, err)
	}
	if n, err := classic.Call[int](ctx(t), c, "Twice", 21); err != nil || n != 42 {
		t.Errorf("Call Twice 21 = %d, %v", n, err)
	}
	if f, err := classic.Eval[float64](ctx(t), c, "Point{6, 8}.Norm()"); err != nil || f != 10 {
		t.Errorf("Norm = %v, %v", f, err)
	}
	if s, err := classic.Call[string](ctx(t), c, "strings.ToUpper", "abc"); err != nil || s != "ABC" {
		t.Errorf("strings.ToUpper = %q, %v", s, err)
	}
	if _, err := classic.Call[string](ctx(t), c, "Twice", "x"); !errors.Is(err, gopyro.ErrArgument) {
		t.Errorf("Twice(\"x\"): %v, want an argument error", err)
	}
	if err := c.Execute(ctx(t), "func Half(n int8) int8 { return n / 2 }"); err != nil {
		t.Fatal(err)
	}
	if _, err := classic.Call[int8](ctx(t), c, "Half", 300); !errors.Is(err, gopyro.ErrArgument) || !strings.Contains(err.Error(), "overflows int8") {
		t.Errorf("Half(300): %v, want an overflow argument error", err)
	}
	if err := c.Execute(ctx(t), `sub, err := exec.Command("echo", "sub").Output()`); err != nil {
		t.Fatalf("os/exec, imported for the code: %v", err)
	}
	if out, err := classic.Eval[string](ctx(t), c, "string(sub)"); err != nil || out != "sub\n" {
		t.Errorf("exec output %q, %v", out, err)
	}
	if _, err := classic.Call[int](ctx(t), c, "strconv.Atoi", "x"); !errors.Is(err, classic.ErrPanic) || !strings.Contains(err.Error(), "invalid syntax") {
		t.Errorf("Atoi(\"x\"): %v, want the returned error", err)
	}
}

// Values come back typed; what cannot travel says why.
func TestEvalValues(t *testing.T) {
	s, _, _ := serve(t, classic.Config{})
	c := connect(t, s)
	if v, err := classic.Eval[string](ctx(t), c, `strings.Repeat("ab", 2)`); err != nil || v != "abab" {
		t.Errorf("string: %q, %v", v, err)
	}
	if v, err := classic.Eval[[]int](ctx(t), c, `[]int{1, 2, 3}`); err != nil || fmt.Sprint(v) != "[1 2 3]" {
		t.Errorf("slice: %v, %v", v, err)
	}
	if v, err := classic.Eval[map[string]int](ctx(t), c, `map[string]int{"a": 1}`); err != nil || v["a"] != 1 {
		t.Errorf("map: %v, %v", v, err)
	}
	type pair struct {
		A int
		B string
	}
	if v, err := classic.Eval[pair](ctx(t), c, `struct{A int; B string}{7, "x"}`); err != nil || v != (pair{7, "x"}) {
		t.Errorf("struct: %+v, %v", v, err)
	}
	if v, err := classic.Eval[bool](ctx(t), c, `1 < 2`); err != nil || !v {
		t.Errorf("bool: %v, %v", v, err)
	}
	if _, err := classic.Eval[int8](ctx(t), c, `300`); !errors.Is(err, gopyro.ErrArgument) {
		t.Errorf("300 into int8: %v, want an argument error", err)
	}
	_, err := classic.Eval[any](ctx(t), c, `make(chan int)`)
	if !errors.Is(err, classic.ErrNotSendable) || !strings.Contains(err.Error(), "chan int") {
		t.Errorf("chan: %v, want ErrNotSendable naming chan int", err)
	}
	if _, err := classic.Eval[any](ctx(t), c, `fmt.Println`); !errors.Is(err, classic.ErrNotSendable) {
		t.Errorf("func: %v, want ErrNotSendable", err)
	}
	if _, err := classic.Eval[int](ctx(t), c, `x := 1`); !errors.Is(err, classic.ErrCompile) {
		t.Errorf("statement as expression: %v, want ErrCompile", err)
	}
}

// Bad code gets typed errors with positions, and the session goes on.
func TestCodeErrors(t *testing.T) {
	s, _, _ := serve(t, classic.Config{})
	c := connect(t, s)
	cases := []struct {
		code string
		want *gopyro.Error
		text string
	}{
		{"x := 1\nx +", classic.ErrCompile, "line 2:"},
		{"fmt.Println(1)\nfmt.Println(undefinedThing)", classic.ErrCompile, "line 2:13: undefined: undefinedThing"},
		{"a := []int{1}\n_ = a[5]", classic.ErrPanic, "index out of range"},
		{`panic("boom")`, classic.ErrPanic, "panic: boom"},
		{"fmt.Println(min(1, 2))", classic.ErrUnsupported, "min"},
		{"for i := range 3 { _ = i }", classic.ErrUnsupported, "range over an int"},
	}
	for _, tc := range cases {
		err := c.Execute(ctx(t), tc.code)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%q: %v, want %s with %q", tc.code, err, tc.want.RemoteType, tc.text)
		}
	}
	if n, err := classic.Eval[int](ctx(t), c, "40 + 2"); err != nil || n != 42 {
		t.Fatalf("the session did not go on: %d, %v", n, err)
	}
}

// Files of any size go both ways in chunks, through temporary files.
func TestUploadDownload(t *testing.T) {
	s, _, _ := serve(t, classic.Config{})
	c := connect(t, s)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.bin")
	data := make([]byte, 24<<20+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(dir, "remote.bin")
	if err := c.Upload(ctx(t), src, remote); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(dir, "back.bin")
	if err := c.Download(ctx(t), remote, back); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(back)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("round trip differs (%d bytes, %v)", len(got), err)
	}
	// The script sees the uploaded file.
	if err := c.Execute(ctx(t), fmt.Sprintf("uploaded, _ := os.ReadFile(%q)", remote)); err != nil {
		t.Fatal(err)
	}
	if n, err := classic.Eval[int](ctx(t), c, "len(uploaded)"); err != nil || n != len(data) {
		t.Errorf("the session sees %d bytes, %v", n, err)
	}
	if err := c.Upload(ctx(t), src, filepath.Join(dir, "no", "such", "dir", "f")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("upload to a missing directory: %v", err)
	}
	if err := c.Download(ctx(t), filepath.Join(dir, "missing"), filepath.Join(dir, "x")); !errors.Is(err, gopyro.ErrNotFound) {
		t.Errorf("download of a missing file: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "back.bin remote.bin src.bin" {
		t.Errorf("left in the directory: %s", got)
	}
}
