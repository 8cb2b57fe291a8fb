package cookbook_test

import (
	"context"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gopyro/gopyro/classic"
	cookbook "github.com/gopyro/gopyro/examples/classic"
	"github.com/gopyro/gopyro/internal/testutil"
)

func TestMain(m *testing.M) {
	if classic.IsWorker() { // this test binary is also the sessions' worker
		classic.ServeWorker()
	}
	os.Exit(m.Run())
}

// The recipe's lines appear on the side that printed them.
func TestCookbook(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var server, client testutil.Lines
	s, errc, err := cookbook.Start(ctx, ln, &server, classic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()
	cctx, ccancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer ccancel()
	if err := cookbook.Client(cctx, s.Addr().String(), &client); err != nil {
		t.Fatal(err)
	}
	got := client.All()
	if len(got) != 2 || got[0] != "hi here" || !regexp.MustCompile(`^Add\(40, 2\) = 42, computed in worker process \d+$`).MatchString(got[1]) {
		t.Errorf("client printed %q", got)
	}
	server.Wait(t, func(l string) bool { return l == "hi python cookbook" })
	if got, want := strings.Join(server.All(), "|"), "classic server on "+s.Addr().String()+"|hi python cookbook"; got != want {
		t.Errorf("server printed %q, want %q", got, want)
	}
}
