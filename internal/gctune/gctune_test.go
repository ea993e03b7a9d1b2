package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// sink keeps the compiler from dropping the test's allocations.
var sink []byte

// collections counts the cycles that allocating total bytes of short-lived garbage takes.
func collections(total int) uint64 {
	cycles := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	runtime.GC()
	metrics.Read(cycles)
	before := cycles[0].Value.Uint64()
	for n := 0; n < total; n += 4 << 10 {
		sink = make([]byte, 4<<10)
	}
	metrics.Read(cycles)
	return cycles[0].Value.Uint64() - before
}

// goalAfterCycle runs cycles until the heap goal satisfies ok, or for a second: MinHeap
// adjusts on the runtime's cleanup goroutine, some time after a cycle. It returns the
// last goal.
func goalAfterCycle(ok func(goal uint64) bool) uint64 {
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	for range 100 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		metrics.Read(goal)
		if ok(goal[0].Value.Uint64()) {
			break
		}
	}
	return goal[0].Value.Uint64()
}

func TestMinHeapCollectsLessOnASmallHeap(t *testing.T) {
	const garbage = 512 << 20
	without := collections(garbage)
	stop := MinHeap(128 << 20)
	goalAfterCycle(func(g uint64) bool { return g >= 128<<20 })
	with := collections(garbage)
	// After a cycle, once MinHeap has adjusted GOGC (on the cleanup goroutine, which a
	// busy machine may run late), the goal is the floor.
	goal := goalAfterCycle(func(g uint64) bool { return g >= 128<<20 && g <= 160<<20 })
	stop()
	again := collections(garbage)
	t.Logf("cycles for %d MiB of garbage: %d without a floor, %d with 128 MiB (heap goal %d MiB), %d after stop",
		garbage>>20, without, with, goal>>20, again)
	if with < 2 || with > 8 || with*4 > without {
		t.Errorf("with a 128 MiB floor, %d MiB of garbage took %d cycles (without: %d); want 2 to 8", garbage>>20, with, without)
	}
	if goal < 128<<20 || goal > 160<<20 {
		t.Errorf("heap goal with a 128 MiB floor = %d MiB, want 128 to 160", goal>>20)
	}
	if again*2 < without {
		t.Errorf("after stop, %d cycles, want about as many as before the floor (%d)", again, without)
	}
}

func TestMinHeapRestoresGOGC(t *testing.T) {
	old := debug.SetGCPercent(150)
	defer debug.SetGCPercent(old)
	stop := MinHeap(64 << 20)
	goalAfterCycle(func(g uint64) bool { return g >= 64<<20 })
	stop()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("GOGC after stop = %d, want 150", got)
	}
}

func TestMinHeapOffLeavesGOGC(t *testing.T) {
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	stop := MinHeap(64 << 20)
	runtime.GC()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("GOGC=off became %d", got)
	}
	stop()

	debug.SetGCPercent(100)
	stop = MinHeap(0)
	goalAfterCycle(func(uint64) bool { return true })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("MinHeap(0) changed GOGC to %d", got)
	}
	stop()
}

func TestMinHeapLeavesALargeHeapToGOGC(t *testing.T) {
	live := make([][]byte, 0, 96)
	for range 96 {
		live = append(live, make([]byte, 1<<20))
	}
	stop := MinHeap(32 << 20)
	defer stop()
	if g := goalAfterCycle(func(g uint64) bool { return g < 260<<20 }); g < 190<<20 || g > 260<<20 {
		t.Errorf("heap goal with 96 MiB live and a 32 MiB floor = %d MiB, want about 192 (GOGC=100)", g>>20)
	}
	runtime.KeepAlive(live)
}
