package wire

import (
	"context"
	"sync"
	"sync/atomic"
)

// DefaultMemoryBudget is the budget a Server makes for itself when Limits.Budget is nil.
const DefaultMemoryBudget = 512 << 20 // 512 MiB

// MemoryBudget bounds, across every Server that shares it, the bytes held for requests
// (frames read or being read, and what decoding them may allocate) and for answers not
// yet written. `strait dev` shares one among its proxy and nodes, so that the process, not
// each listener, has a bound.
//
// Readers wait in line while the budget is spent: a connection whose request does not fit
// stops reading until answers drain. Two things may go past the limit, so that the budget
// can slow the process down but never wedge it:
//   - answers, which already exist when they are counted, and whose writing is what frees
//     the budget;
//   - the one request of a connection that holds nothing else. Without it a request larger
//     than the budget could never be served, and a handler that waits on another
//     connection of the same process (a proxy forwarding to an in-process node, a leader
//     waiting for its followers' fetches) could wait for ever on a reader that waits for
//     the budget that handler holds.
//
// Its methods are safe for concurrent use. A nil *MemoryBudget has no limit.
type MemoryBudget struct {
	limit int64
	waits atomic.Int64
	mu    struct {
		sync.Mutex
		used  int64
		queue []*budgetWaiter // first come, first served, so a large request is not starved
	}
}

// budgetWaiter is one reader waiting for n bytes; granted is closed once they are its.
type budgetWaiter struct {
	n       int64
	granted chan struct{}
}

// NewMemoryBudget returns a budget of limit bytes; limit <= 0 means DefaultMemoryBudget.
func NewMemoryBudget(limit int64) *MemoryBudget {
	if limit <= 0 {
		limit = DefaultMemoryBudget
	}
	return &MemoryBudget{limit: limit}
}

// Limit returns the budget's size in bytes.
func (b *MemoryBudget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Used returns the bytes held now; it may exceed Limit (see MemoryBudget).
func (b *MemoryBudget) Used() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.used
}

// Waits returns how many times a reader had to wait for the budget.
func (b *MemoryBudget) Waits() int64 {
	if b == nil {
		return 0
	}
	return b.waits.Load()
}

// reserve takes n bytes, waiting in line until they fit, ctx ends or stop is closed; it
// reports whether it had to wait. With exceed, or once exceedNow is closed, they are
// taken at once whatever the budget holds. A request larger than the whole budget fits
// once the budget is empty.
func (b *MemoryBudget) reserve(ctx context.Context, stop, exceedNow <-chan struct{}, n int64, exceed bool) (waited bool, err error) {
	if b == nil || n <= 0 {
		return false, nil
	}
	b.mu.Lock()
	if exceed || (len(b.mu.queue) == 0 && b.fitsLocked(n)) {
		b.mu.used += n
		b.mu.Unlock()
		return false, nil
	}
	w := &budgetWaiter{n: n, granted: make(chan struct{})}
	b.mu.queue = append(b.mu.queue, w)
	b.mu.Unlock()
	b.waits.Add(1)

	select {
	case <-w.granted:
		return true, nil
	case <-exceedNow:
		b.promote(w)
		return true, nil
	case <-ctx.Done():
		b.abandon(w)
		return true, context.Cause(ctx)
	case <-stop:
		b.abandon(w)
		return true, errDraining
	}
}

// charge takes n bytes at once, past the limit if need be: for answers, which exist already.
func (b *MemoryBudget) charge(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	b.mu.used += n
	b.mu.Unlock()
}

// release gives n bytes back and lets waiting readers in, in order, while they fit.
func (b *MemoryBudget) release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.used -= n
	b.grantLocked()
}

func (b *MemoryBudget) fitsLocked(n int64) bool {
	return b.mu.used == 0 || b.mu.used+n <= b.limit
}

func (b *MemoryBudget) grantLocked() {
	for len(b.mu.queue) > 0 && b.fitsLocked(b.mu.queue[0].n) {
		w := b.mu.queue[0]
		b.mu.queue[0] = nil
		b.mu.queue = b.mu.queue[1:]
		b.mu.used += w.n
		close(w.granted)
	}
}

// promote grants w at once, past the limit if need be, unless it was granted meanwhile.
func (b *MemoryBudget) promote(w *budgetWaiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.granted:
	default:
		b.removeLocked(w)
		b.mu.used += w.n
		close(w.granted)
		b.grantLocked() // w may have been holding up the line
	}
}

func (b *MemoryBudget) removeLocked(w *budgetWaiter) {
	for i, q := range b.mu.queue {
		if q == w {
			b.mu.queue = append(b.mu.queue[:i], b.mu.queue[i+1:]...)
			return
		}
	}
}

// abandon takes w out of the line, or gives its bytes back if they were granted meanwhile.
func (b *MemoryBudget) abandon(w *budgetWaiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.granted:
		b.mu.used -= w.n
	default:
		b.removeLocked(w)
	}
	b.grantLocked() // w may have been holding up the line
}
