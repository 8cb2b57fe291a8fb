package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/daemon"
	"github.com/gopyro/gopyro/proxy"
)

type Greeter struct{}

func (Greeter) Greet(name string) (string, error) {
	if name == "" {
		return "", errors.New("no name given")
	}
	return "Hi welcome " + name, nil
}

func Example() {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	d, err := daemon.New()
	if err != nil {
		panic(err)
	}
	defer d.Close()
	go d.Serve(ctx, ln)
	<-d.Ready()
	uri, err := d.Register(Greeter{}, daemon.WithID("example.greeting"))
	if err != nil {
		panic(err)
	}

	p, err := proxy.NewURI(uri)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	msg, err := proxy.Call[string](ctx, p, "Greet", "Ada")
	fmt.Println(msg, err)

	var g struct {
		Greet func(name string) (string, error)
	}
	if err := p.Bind(&g); err != nil {
		panic(err)
	}
	_, err = g.Greet("")
	var ge *gopyro.Error
	fmt.Println(errors.As(err, &ge), ge.RemoteType, ge.Message)
	// Output:
	// Hi welcome Ada <nil>
	// true *errors.errorString no name given
}

// Counter serves the batch and stream examples.
type Counter struct{}

// Square returns n*n.
func (Counter) Square(n int) int { return n * n }

// Count yields 0..n-1.
func (Counter) Count(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// serveCounter serves a Counter on a daemon of its own.
func serveCounter(ctx context.Context) (*proxy.Proxy, func()) {
	d, err := daemon.Start(ctx, "")
	if err != nil {
		panic(err)
	}
	uri, err := d.Register(Counter{})
	if err != nil {
		panic(err)
	}
	p, err := proxy.NewURI(uri)
	if err != nil {
		panic(err)
	}
	return p, func() { p.Close(); d.Close() }
}

func ExampleProxy_Batch() {
	p, stop := serveCounter(context.Background())
	defer stop()
	b := p.Batch()
	for n := range 3 {
		b.Call("Square", n+1)
	}
	b.Call("Square", "three") // a bad call fails alone
	res, err := b.Run(context.Background())
	if err != nil {
		panic(err)
	}
	for _, r := range res {
		var sq int
		err := r.Decode(&sq)
		fmt.Println(sq, errors.Is(err, gopyro.ErrArgument))
	}
	// Output:
	// 1 false
	// 4 false
	// 9 false
	// 0 true
}

func ExampleStream() {
	p, stop := serveCounter(context.Background())
	defer stop()
	sum := 0
	for n, err := range proxy.Stream[int](context.Background(), p, "Count", 1000) {
		if err != nil {
			panic(err)
		}
		if n == 100 {
			break // closes the stream on the server
		}
		sum += n
	}
	fmt.Println(sum)
	// Output:
	// 4950
}
