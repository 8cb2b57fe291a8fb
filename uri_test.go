package gopyro_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/gopyro/gopyro"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want gopyro.URI
		out  string // canonical form; "" means same as in
	}{
		{"PYRO:obj_1@127.0.0.1:9090", gopyro.URI{Scheme: "PYRO", Object: "obj_1", Host: "127.0.0.1", Port: 9090}, ""},
		{"pyro:Pyro.NameServer@localhost:1", gopyro.URI{Scheme: "PYRO", Object: "Pyro.NameServer", Host: "localhost", Port: 1}, "PYRO:Pyro.NameServer@localhost:1"},
		{"PYRO:x@[::1]:5000", gopyro.URI{Scheme: "PYRO", Object: "x", Host: "::1", Port: 5000}, ""},
		{"PYRO:x@./u:/tmp/sock", gopyro.URI{Scheme: "PYRO", Object: "x", Socket: "/tmp/sock"}, ""},
		{"PYRONAME:example.shop", gopyro.URI{Scheme: "PYRONAME", Object: "example.shop"}, ""},
		{"PyroName:a.b@ns.local", gopyro.URI{Scheme: "PYRONAME", Object: "a.b", Host: "ns.local"}, "PYRONAME:a.b@ns.local"},
		{"PYRONAME:a@10.0.0.1:9091", gopyro.URI{Scheme: "PYRONAME", Object: "a", Host: "10.0.0.1", Port: 9091}, ""},
		{"PYRONAME:a@[fe80::1]", gopyro.URI{Scheme: "PYRONAME", Object: "a", Host: "fe80::1"}, ""},
		{"PYROMETA:gpu,fast", gopyro.URI{Scheme: "PYROMETA", Tags: []string{"gpu", "fast"}}, ""},
		{"PYROMETA:x@h:9", gopyro.URI{Scheme: "PYROMETA", Tags: []string{"x"}, Host: "h", Port: 9}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := gopyro.Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse = %#v, want %#v", got, tt.want)
			}
			want := tt.out
			if want == "" {
				want = tt.in
			}
			if got.String() != want {
				t.Fatalf("String = %q, want %q", got.String(), want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"", "obj@h:1", "HTTP:x@h:1", "PYRO:obj", "PYRO:obj@host", "PYRO:@h:1", "PYRO:a b@h:1",
		"PYRO:x@h:0", "PYRO:x@h:65536", "PYRO:x@h:-1", "PYRO:x@h:+1", "PYRO:x@h:", "PYRO:x@::1:80",
		"PYRO:x@[::1", "PYRO:x@[::1]x", "PYRO:x@[nothost]:1", "PYRONAME:", "PYRONAME:a\tb",
		"PYROMETA:a,,b", "PYROMETA:", "PYRONAME:x@", "PYRO:x@./u:", "PYRO:x@:80", "PYRONAME:x@h:07",
	} {
		_, err := gopyro.Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", in)
			continue
		}
		if !errors.Is(err, gopyro.ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"PYRO:obj@127.0.0.1:9090", "PYRONAME:a.b@[::1]:80", "PYROMETA:a,b", "PYRO:x@./u:/s", "pyroname:x@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := gopyro.Parse(s)
		if err != nil {
			return
		}
		u2, err := gopyro.Parse(u.String())
		if err != nil {
			t.Fatalf("Parse(%q) ok but Parse(String()=%q) failed: %v", s, u.String(), err)
		}
		if !reflect.DeepEqual(u, u2) {
			t.Fatalf("round trip of %q: %#v != %#v", s, u, u2)
		}
	})
}

func TestErrorIs(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &gopyro.Error{Code: gopyro.CodeRemote, Remote: true, RemoteType: "shop.UnknownAccount", Message: "unknown account"})
	if !errors.Is(err, gopyro.ErrRemote) {
		t.Fatal("Is by code")
	}
	if !errors.Is(err, gopyro.NewError(gopyro.CodeRemote, "shop.UnknownAccount", "")) {
		t.Fatal("Is by code and type")
	}
	if errors.Is(err, gopyro.NewError(gopyro.CodeRemote, "other", "")) || errors.Is(err, gopyro.ErrNotFound) {
		t.Fatal("Is matched the wrong error")
	}
	if gopyro.CodeOf(err) != gopyro.CodeRemote || gopyro.CodeOf(errors.New("x")) != gopyro.CodeUnknown {
		t.Fatal("CodeOf")
	}
	e := &gopyro.Error{Code: gopyro.CodeRemote, Op: "call Deposit", URI: "PYRO:x@h:1", Remote: true, RemoteType: "*errors.errorString", Message: "boom"}
	if got := e.Error(); got != "call Deposit PYRO:x@h:1: remote error: remote *errors.errorString: boom" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestSentinels(t *testing.T) {
	// Sentinels are constants: they match by code, whatever wraps them.
	for _, c := range []struct {
		sentinel error
		code     gopyro.Code
	}{
		{gopyro.ErrNotFound, gopyro.CodeNotFound},
		{gopyro.ErrCanceled, gopyro.CodeCanceled},
		{gopyro.ErrBusy, gopyro.CodeBusy},
	} {
		err := fmt.Errorf("outer: %w", &gopyro.Error{Code: c.code})
		if !errors.Is(err, c.sentinel) {
			t.Errorf("%v does not match %v", err, c.sentinel)
		}
		if errors.Is(&gopyro.Error{Code: gopyro.CodeUnknown}, c.sentinel) {
			t.Errorf("an unknown error matches %v", c.sentinel)
		}
	}
	if gopyro.ErrCanceled.Error() != "gopyro: canceled" {
		t.Fatalf("sentinel text %q", gopyro.ErrCanceled.Error())
	}
}

func TestNamesCannotDisguise(t *testing.T) {
	for _, bad := range []string{
		"evil\u202egnp.exe", // right-to-left override
		"a\u200db",          // zero-width joiner
		"a\u2066b",          // left-to-right isolate
		"a\ufeffb",          // zero-width no-break space
		strings.Repeat("x", gopyro.MaxNameLen+1),
	} {
		err := gopyro.ValidateName(bad)
		if !errors.Is(err, gopyro.ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v", bad, err)
		}
		if err != nil && len(err.Error()) > 512 {
			t.Errorf("the error quotes the whole name: %d bytes", len(err.Error()))
		}
		if _, err := gopyro.Parse("PYRONAME:" + bad); err == nil {
			t.Errorf("Parse accepted the name %q", bad)
		}
	}
	if err := gopyro.ValidateName("example.greeting-ü"); err != nil {
		t.Fatal(err)
	}
}

// A remote error without a type reads "remote: message", not "remote :
// message" (issue 15, item 7).
func TestErrorTextWithoutType(t *testing.T) {
	e := &gopyro.Error{Code: gopyro.CodeNotFound, Remote: true, Message: "unknown name: nosuch"}
	if got, want := e.Error(), "not found: remote: unknown name: nosuch"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	e.RemoteType = "nameserver.Unknown"
	if got, want := e.Error(), "not found: remote nameserver.Unknown: unknown name: nosuch"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}
