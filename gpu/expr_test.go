package gpu

import (
	"strings"
	"testing"
)

func TestParseExprColumns(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"a +* b", "column 4"},
		{"select(x > 1, x)", "select takes 3"},
		{"  where(x, y, z) + q.r", "column 20"},
		{"__x + 1", "reserved"},
		{"sqrt", "is a function"},
		{"x ^ 2", "operator ^"},
		{"99999999999999999999", "out of range"},
		{strings.Repeat("x+", 600) + "x", "more than 512"},
	} {
		_, err := ParseExpr(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseExpr(%q) = %v, want an error with %q", tc.src, err, tc.want)
		}
	}
	e, err := ParseExpr("select(x > y, -x, 2.5) + where(y, 1, 0)")
	if err != nil {
		t.Fatal(err)
	}
	if e.Root.Op != OpAdd || e.Root.Args[0].Op != OpSelect || e.Root.Args[1].Op != OpSelect || strings.Join(e.Vars, ",") != "x,y" {
		t.Fatalf("parsed %+v, vars %v", e.Root, e.Vars)
	}
}

// FuzzParseExpr: no input makes the parser panic, and what parses stays
// within the limits.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"a*x + b*y", "select(x > 0, x, -x)", "pow(abs(x), 1.5)", "x[0]", "((", "sel\x00ect"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := ParseExpr(src)
		if err != nil {
			return
		}
		n := 0
		var walk func(*Node)
		walk = func(x *Node) {
			n++
			for _, a := range x.Args {
				walk(a)
			}
		}
		walk(e.Root)
		if n > MaxExprNodes {
			t.Fatalf("%q parsed to %d nodes", src, n)
		}
	})
}
