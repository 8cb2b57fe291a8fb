package wire

import (
	"sync"
)

// Budget is a daemon-wide allowance of bytes held for requests and replies
// in flight: a weighted semaphore whose waiters are served in order, so a
// large request is not starved by a stream of small ones. Readers wait on
// it before they read a request's body, which turns a memory limit into
// TCP back-pressure on the senders. It is safe for concurrent use.
//
// An eighth of it is kept for small requests (at most a quarter of that
// each): large requests and replies draw on the rest as well, so that
// peers holding large requests half sent (until their frame timeout) or
// large replies unread (until the write timeout) cannot stop small calls.
type Budget struct {
	size  int64
	small int64   // the largest small request
	large *Budget // what large requests may hold; nil in that inner budget

	mu      sync.Mutex
	used    int64     // guarded by mu
	waiters []*waiter // in arrival order; guarded by mu
}

type waiter struct {
	n     int64
	ready chan struct{} // closed when granted
}

// NewBudget returns a budget of size bytes (at least 1).
func NewBudget(size int64) *Budget {
	b := &Budget{size: max(size, 1)}
	reserve := b.size / 8
	b.small = reserve / 4
	b.large = &Budget{size: b.size - reserve}
	return b
}

// isLarge reports whether a request of n bytes counts as large.
func (b *Budget) isLarge(n int64) bool { return b.large != nil && n > b.small }

// Size returns the budget's size in bytes.
func (b *Budget) Size() int64 { return b.size }

// InUse returns the bytes held now.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// clamp makes a request larger than the whole budget ask for the whole
// budget instead of waiting forever; it returns what is really taken.
func (b *Budget) clamp(n int64) int64 { return min(max(n, 0), b.size) }

// Acquire takes n bytes (clamped to the budget's size), waiting in line
// until they are free or done is closed. It returns the bytes taken, to be
// given back with Release, and false if done was closed first (nothing is
// taken then).
func (b *Budget) Acquire(done <-chan struct{}, n int64) (int64, bool) {
	if b.isLarge(n) {
		n, ok := b.large.Acquire(done, n)
		if !ok {
			return 0, false
		}
		if _, ok := b.acquire(done, n); !ok {
			b.large.Release(n)
			return 0, false
		}
		return n, true
	}
	return b.acquire(done, n)
}

func (b *Budget) acquire(done <-chan struct{}, n int64) (int64, bool) {
	n = b.clamp(n)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.size {
		b.used += n
		b.mu.Unlock()
		return n, true
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return n, true
	case <-done:
		b.mu.Lock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			b.used -= n
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
		}
		b.grant()
		b.mu.Unlock()
		return 0, false
	}
}

// TryAcquire takes n bytes if they are free now and nobody waits.
func (b *Budget) TryAcquire(n int64) (int64, bool) {
	if b.isLarge(n) {
		n, ok := b.large.TryAcquire(n)
		if !ok {
			return 0, false
		}
		if _, ok := b.tryAcquire(n); !ok {
			b.large.Release(n)
			return 0, false
		}
		return n, true
	}
	return b.tryAcquire(n)
}

func (b *Budget) tryAcquire(n int64) (int64, bool) {
	n = b.clamp(n)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) > 0 || b.used+n > b.size {
		return 0, false
	}
	b.used += n
	return n, true
}

// Charge counts n bytes of memory already spent (an encoded reply) without
// waiting, even beyond the budget's size, and returns what it counted, to
// be given back with Uncharge. Only a large reply is counted, and only
// against what large requests may hold: while it waits for its reader,
// large requests wait, small ones go on (small replies are bounded by the
// requests in hand).
func (b *Budget) Charge(n int64) int64 {
	if !b.isLarge(n) {
		return 0
	}
	b.large.mu.Lock()
	b.large.used += n
	b.large.mu.Unlock()
	return n
}

// Uncharge gives back what Charge counted.
func (b *Budget) Uncharge(n int64) {
	if n > 0 {
		b.large.release(n)
	}
}

// Release gives back n bytes taken by Acquire or TryAcquire.
func (b *Budget) Release(n int64) {
	switch {
	case b.isLarge(n):
		b.large.release(n)
		b.release(n)
	case n > 0:
		b.release(n)
	}
}

func (b *Budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.mu.Unlock()
		panic("wire: Budget released more than was taken")
	}
	b.grant()
	b.mu.Unlock()
}

// grant wakes the waiters at the head of the line whose bytes are free;
// called with mu.
func (b *Budget) grant() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if b.used+w.n > b.size {
			return
		}
		b.used += w.n
		close(w.ready)
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
	}
}
