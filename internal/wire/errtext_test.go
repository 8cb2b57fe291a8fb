package wire

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gopyro/gopyro"
)

// An error wrapped with %w around a gopyro sentinel keeps its own words
// on the wire, and still matches the sentinel (issue 15 item 5).
func TestWrappedSentinelText(t *testing.T) {
	errNoKey := gopyro.NewError(gopyro.CodeNotFound, "shop.NoKey", "no such key")
	got := DecodeError(EncodeError(fmt.Errorf("lookup %q: %w", "k", errNoKey)))
	if got.Message != `lookup "k": no such key` {
		t.Fatalf("message %q", got.Message)
	}
	if !errors.Is(got, errNoKey) || got.RemoteType != "shop.NoKey" || got.Code != gopyro.CodeNotFound {
		t.Fatalf("the sentinel no longer matches: %+v", got)
	}
	// The sentinel itself travels as before.
	if got := DecodeError(EncodeError(errNoKey)); got.Message != "no such key" {
		t.Fatalf("sentinel message %q", got.Message)
	}
}
