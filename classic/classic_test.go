package classic_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopyro/gopyro/classic"
	"github.com/gopyro/gopyro/internal/testutil"
)

// serve starts a classic server on 127.0.0.1:0 whose console output goes
// to the returned Lines.
func serve(t *testing.T, cfg classic.Config) (*classic.Server, *testutil.Lines, *testutil.Lines) {
	t.Helper()
	var out, errs testutil.Lines
	cfg.Stdout, cfg.Stderr = &out, &errs
	s := classic.NewServer(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(t.Context(), ln) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, &out, &errs
}

func connect(t *testing.T, s *classic.Server) *classic.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := classic.Connect(ctx, s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestCookbook is the RPyC classic recipe: output on the server's
// console until the client redirects stdout, then on the client's.
func TestCookbook(t *testing.T) {
	s, console, _ := serve(t, classic.Config{})
	c := connect(t, s)
	if err := c.Execute(ctx(t), `fmt.Println("hi python cookbook")`); err != nil {
		t.Fatal(err)
	}
	var mine testutil.Lines
	if err := c.RedirectStdout(&mine); err != nil {
		t.Fatal(err)
	}
	if err := c.Execute(ctx(t), `fmt.Println("hi here")`); err != nil {
		t.Fatal(err)
	}
	// Execute returns once the client has the output: no wait needed.
	if got := mine.All(); strings.Join(got, "|") != "hi here" {
		t.Errorf("client got %q, want [hi here]", got)
	}
	console.Wait(t, func(l string) bool { return l == "hi python cookbook" })
	if got := console.All(); strings.Join(got, "|") != "hi python cookbook" {
		t.Errorf("server console got %q", got)
	}
	n, err := classic.Eval[int](ctx(t), c, "6*7")
	if err != nil || n != 42 {
		t.Fatalf("Eval 6*7 = %d, %v", n, err)
	}
	if err := c.Execute(ctx(t), "func Add(a, b int) int { return a + b }"); err != nil {
		t.Fatal(err)
	}
	if n, err := classic.Eval[int](ctx(t), c, "Add(2, 3)"); err != nil || n != 5 {
		t.Fatalf("Add(2, 3) = %d, %v", n, err)
	}
	if wd, err := classic.Call[string](ctx(t), c, "os.Getwd"); err != nil || wd == "" {
		t.Fatalf("os.Getwd = %q, %v", wd, err)
	}
}
