package proxy_test

import (
	"strings"
	"testing"

	"github.com/gopyro/gopyro"
	"github.com/gopyro/gopyro/proxy"
)

// An invalid GOPYRO_NS_PORT is an error, not a silent fall back to the
// default name server (issue 15 item 10).
func TestBadNSPortEnv(t *testing.T) {
	for _, v := range []string{"abc", "70000", "0", "-1"} {
		t.Setenv(proxy.EnvNSPort, v)
		var r proxy.NameServerResolver
		_, err := r.Resolve(t.Context(), gopyro.URI{Scheme: gopyro.SchemePyroName, Object: "x"})
		if gopyro.CodeOf(err) != gopyro.CodeInvalid || !strings.Contains(err.Error(), proxy.EnvNSPort) {
			t.Errorf("%s=%s: %v", proxy.EnvNSPort, v, err)
		}
	}
	// A location in the URI does not consult the environment.
	t.Setenv(proxy.EnvNSPort, "abc")
	var r proxy.NameServerResolver
	_, err := r.Resolve(t.Context(), gopyro.URI{Scheme: gopyro.SchemePyroName, Object: "x", Host: "127.0.0.1", Port: 1})
	if gopyro.CodeOf(err) == gopyro.CodeInvalid {
		t.Errorf("with a location: %v", err)
	}
}
