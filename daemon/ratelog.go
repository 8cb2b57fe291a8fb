package daemon

import (
	"log/slog"
	"sync"
	"time"
)

// logEvery is the most often a repeated warning is written; the ones in
// between are counted, and the next line says how many there were.
const logEvery = time.Second

// rateLog writes one kind of warning at most once per logEvery, so that a
// flood of refused connections or dropped calls cannot flood the log.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time // guarded by mu
	suppressed int       // lines not written since last; guarded by mu
}

// warn writes msg unless one was written less than logEvery ago.
func (r *rateLog) warn(l *slog.Logger, msg string, args ...any) {
	now := time.Now()
	r.mu.Lock()
	if now.Sub(r.last) < logEvery {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.Warn(msg, args...)
}
