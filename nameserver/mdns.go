package nameserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/gopyro/gopyro"
	"github.com/hashicorp/mdns"
)

// MDNSService is the mDNS service type the name server advertises.
const MDNSService = "_gopyro-ns._tcp"

// advertise announces uri over mDNS until the returned server is shut down.
func advertise(uri gopyro.URI, logger *slog.Logger) (*mdns.Server, error) {
	var ips []net.IP
	if ip := net.ParseIP(uri.Host); ip != nil && !ip.IsUnspecified() {
		ips = []net.IP{ip}
	}
	instance := fmt.Sprintf("gopyro-ns-%d", uri.Port)
	svc, err := mdns.NewMDNSService(instance, MDNSService, "", "", uri.Port, ips, []string{"uri=" + uri.String()})
	if err != nil {
		return nil, fmt.Errorf("nameserver: mdns service: %w", err)
	}
	srv, err := mdns.NewServer(&mdns.Config{Zone: svc, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		return nil, fmt.Errorf("nameserver: mdns advertise (is there a multicast route?): %w", err)
	}
	logger.Info("nameserver: advertising over mDNS", "service", MDNSService, "uri", uri.String())
	return srv, nil
}

// discoverRound bounds one mDNS query. hashicorp/mdns's query ignores
// cancellation and runs until its timeout, so Discover queries in short
// rounds: it returns at most one round after the first answer.
const discoverRound = 300 * time.Millisecond

// Discover looks for a name server advertised over mDNS and returns the
// first URI found. It sends multicast queries: use it only where that is
// wanted. It returns soon after an answer arrives, or when ctx is done.
func Discover(ctx context.Context) (gopyro.URI, error) {
	var lastErr error
	for ctx.Err() == nil {
		u, err := discoverOnce(ctx)
		if err == nil {
			return u, nil
		}
		lastErr = err
	}
	return gopyro.URI{}, &gopyro.Error{Code: gopyro.CodeNotFound, Op: "mdns discover",
		Message: "no name server found over mDNS", Err: errors.Join(ctx.Err(), lastErr)}
}

func discoverOnce(ctx context.Context) (gopyro.URI, error) {
	entries := make(chan *mdns.ServiceEntry, 16)
	p := mdns.DefaultParams(MDNSService)
	p.Entries = entries
	p.DisableIPv6 = true
	p.WantUnicastResponse = true
	p.Logger = log.New(io.Discard, "", 0)
	p.Timeout = discoverRound
	if dl, ok := ctx.Deadline(); ok {
		p.Timeout = min(p.Timeout, max(time.Until(dl), time.Millisecond))
	}
	qerr := make(chan error, 1)
	go func() { qerr <- mdns.QueryContext(ctx, p) }()
	var found *gopyro.URI
	for {
		select {
		case e := <-entries:
			for _, f := range e.InfoFields {
				if s, ok := strings.CutPrefix(f, "uri="); ok && found == nil {
					if u, err := gopyro.Parse(s); err == nil {
						found = &u
					}
				}
			}
		case err := <-qerr:
			if found != nil {
				return *found, nil
			}
			if err == nil {
				err = errors.New("no answer")
			}
			return gopyro.URI{}, err
		}
	}
}
