package wire

import "time"

// workers runs handlers on reused goroutines. A new goroutine's stack starts small and
// grows, copying itself, on every request that needs more; a reused one keeps the
// stack it grew. Each task still gets a goroutine of its own at once: when no worker
// is idle a new one starts, and a worker idle for workerIdle ends.
type workers struct {
	tasks chan func() // unbuffered: a send succeeds only into an idle worker's hands
}

const workerIdle = 30 * time.Second

func newWorkers() *workers { return &workers{tasks: make(chan func())} }

// run runs task on an idle worker, or on a new one.
func (w *workers) run(task func()) {
	select {
	case w.tasks <- task:
	default:
		go w.work(task)
	}
}

func (w *workers) work(task func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		task()
		idle.Reset(workerIdle)
		select {
		case task = <-w.tasks:
		case <-idle.C:
			return
		}
	}
}
