package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestRateLog: a flood of the same warning writes one line, and the next
// line counts what was left out (issue 11, item 18).
func TestRateLog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	var r rateLog
	for range 10_000 {
		r.warn(l, "refused")
	}
	if n := strings.Count(buf.String(), "refused"); n != 1 {
		t.Fatalf("%d lines for a flood of 10,000, want 1", n)
	}
	r.last = r.last.Add(-logEvery) // as if a second had passed
	r.warn(l, "refused")
	if !strings.Contains(buf.String(), "suppressed=9999") {
		t.Fatalf("the next line does not count the suppressed ones:\n%s", buf.String())
	}
}
