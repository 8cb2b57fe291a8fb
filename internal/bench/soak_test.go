package bench

import (
	"testing"
	"time"
)

// TestSoak runs the soak case briefly: every operation of the mix works,
// and the process's goroutines and descriptors come back once every
// client has closed. Its figures are not checked (benchmarks report them).
func TestSoak(t *testing.T) {
	r, err := Soak(t.Context(), time.Second, 4)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors > 0 {
		t.Fatalf("%d of %d operations failed; the first: %s", r.Errors, r.Ops, r.FirstError)
	}
	for _, k := range soakKinds {
		if r.ByKind[k] == 0 {
			t.Errorf("no %s operation ran", k)
		}
	}
	if r.End.Goroutines > r.Start.Goroutines || r.End.FDs > r.Start.FDs {
		t.Fatalf("resources did not come back: %+v, then %+v", r.Start, r.End)
	}
}
