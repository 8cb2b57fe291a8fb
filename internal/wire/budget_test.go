package wire

import (
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	b := NewBudget(1024) // 128 kept for small requests of at most 32 bytes
	if n, ok := b.TryAcquire(800); !ok || n != 800 {
		t.Fatalf("TryAcquire(800) = %d, %v", n, ok)
	}
	// Large requests may hold 896 in all: 100 more does not fit.
	if _, ok := b.TryAcquire(100); ok {
		t.Fatal("a large request beyond the large share was granted")
	}
	// Small ones still fit, up to the whole budget.
	for range 7 {
		if _, ok := b.TryAcquire(32); !ok {
			t.Fatalf("small request refused with %d of 1024 in use", b.InUse())
		}
	}
	if got := b.InUse(); got != 800+7*32 {
		t.Fatalf("InUse = %d", got)
	}

	// Waiters are served in order, when room is given back.
	done := make(chan struct{})
	granted := make(chan int64, 2)
	go func() {
		n, _ := b.Acquire(done, 90)
		granted <- n
	}()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 1 })
	b.Release(800)
	if n := <-granted; n != 90 {
		t.Fatalf("granted %d", n)
	}
	// A request larger than the budget is clamped, not stuck forever.
	b.Release(90)
	for range 7 {
		b.Release(32)
	}
	if n, ok := b.TryAcquire(1 << 30); !ok || n != 896 {
		t.Fatalf("TryAcquire(1 GiB) = %d, %v; want the large share", n, ok)
	}
	// A waiter whose done closes takes nothing.
	close(done)
	if _, ok := b.Acquire(done, 500); ok {
		t.Fatal("Acquire succeeded after done, with the budget spent")
	}
	b.Release(896)
	if got := b.InUse(); got != 0 {
		t.Fatalf("InUse = %d after every release", got)
	}
	// A charged large reply stops large requests, not small ones.
	c := b.Charge(896)
	if _, ok := b.TryAcquire(64); ok {
		t.Fatal("a large request was granted while a large reply is charged")
	}
	if _, ok := b.TryAcquire(16); !ok {
		t.Fatal("a small request was refused while a large reply is charged")
	}
	b.Uncharge(c)
	b.Release(16)
	if _, ok := b.TryAcquire(896); !ok {
		t.Fatal("the charge was not given back")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
