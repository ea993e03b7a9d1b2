// Package gctune keeps Go's garbage collector from running on a small heap more often
// than a server needs.
//
// The collector starts a cycle when the heap has grown GOGC percent past what the last
// cycle left live. A Strait process keeps little live heap (routing metadata,
// connection state: a few MiB) and allocates steadily while it serves, so at GOGC=100
// it collects ten or more times a second. A cycle takes a quarter of the CPU, a whole
// core of a 2-core machine, for a millisecond or so, and a request that arrives then
// waits: one cycle each in the proxy and the node was most of a forwarded request's p99.
//
// MinHeap raises GOGC after each cycle so that the next one starts no sooner than the
// heap reaches a floor, and leaves GOGC's own answer once the live heap is large enough
// for it to be above the floor. GOMEMLIMIT still bounds the heap: the collector runs
// when a memory limit is near, whatever GOGC says.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// MinHeap makes the collector wait for the heap to reach floor bytes before starting a
// cycle, until stop is called, which restores GOGC. A floor of 0, or GOGC=off, leaves
// the collector as it is.
func MinHeap(floor uint64) (stop func()) {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if floor == 0 || base < 0 {
		return func() {}
	}
	t := &tuner{floor: floor, base: base, percent: base}
	t.sizes = []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	t.adjust()
	t.arm()
	return t.stop
}

// tuner holds what MinHeap needs between cycles. adjust runs on the runtime's cleanup
// goroutine; the mutex orders it against stop.
type tuner struct {
	floor uint64
	base  int // GOGC as the process started

	mu      sync.Mutex
	stopped bool
	percent int              // as last set
	sizes   []metrics.Sample // live heap, stacks and globals as the last cycle found them
}

// runtimeHeapMinimum is the runtime's smallest heap goal at GOGC=100, which it scales
// with GOGC.
const runtimeHeapMinimum = 4 << 20

// maxPercent bounds GOGC when the live heap is tiny, far below any floor worth asking.
const maxPercent = 1_000_000

// adjust sets GOGC so that the next cycle starts at the floor or, if that is later,
// where the base GOGC would start it. It reports false once stopped.
//
// The runtime's heap goal is the larger of two, both growing with GOGC: the live heap
// plus GOGC percent of all it scans (the live heap, the goroutines' stacks, the
// globals), and a minimum heap of 4 MiB at GOGC=100. The percent that puts the larger
// of them at the floor is the smaller of the two that put each there.
func (t *tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sizes)
	live := t.sizes[0].Value.Uint64()
	scanned := live + t.sizes[1].Value.Uint64() + t.sizes[2].Value.Uint64()
	if live == 0 { // no cycle yet: the runtime's first goal stands
		return true
	}
	percent := t.base
	if live < t.floor {
		byScan := (t.floor - live) * 100 / scanned
		byMinimum := t.floor * 100 / runtimeHeapMinimum
		percent = max(percent, int(min(byScan, byMinimum, maxPercent)))
	}
	if percent != t.percent {
		debug.SetGCPercent(percent)
		t.percent = percent
	}
	return true
}

// arm has adjust run after the next cycle: the sentinel is garbage at once, and only a
// cycle finds it so. It is 16 bytes, too large for the tiny allocator, which would
// share its block with other objects and delay the cleanup until they are all garbage.
func (t *tuner) arm() {
	sentinel := new([16]byte)
	runtime.AddCleanup(sentinel, func(t *tuner) {
		if t.adjust() {
			t.arm()
		}
	}, t)
}

func (t *tuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		debug.SetGCPercent(t.base)
	}
}
