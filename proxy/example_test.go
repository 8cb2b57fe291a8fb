package proxy_test

import (
	"context"
	"errors"
	"fmt"
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

	p, err := proxy.New(uri)
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
