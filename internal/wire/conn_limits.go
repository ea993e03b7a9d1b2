package wire

import "context"

// What a connection holds, in its own budget and in the process's: the request being
// read (reading), requests in flight, and answers not yet written (answers). The reader
// waits for room before it reads more; handlers wait for answers to drain before they
// run; releases wake both.

// reserve takes n more bytes for the request being read: it waits while the connection
// or the process cannot hold them, unless that request is all the connection holds. A
// reader waiting for the process's budget goes ahead once its connection empties.
func (c *conn) reserve(n int64) error {
	if err := c.awaitRoom(n); err != nil {
		return err
	}
	c.mu.Lock()
	alone := c.mu.held == c.mu.reading
	var emptied chan struct{}
	if !alone {
		emptied = make(chan struct{})
		c.mu.emptied = emptied
	}
	c.mu.Unlock()
	waited, err := c.budget.reserve(c.ctx, c.stop, emptied, n, alone)
	if waited {
		c.srv.stats.pausedBudget.Add(1)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.mu.emptied = nil
	c.mu.held += n
	c.mu.reading += n
	c.mu.Unlock()
	c.srv.stats.held.Add(n)
	return nil
}

// awaitRoom waits until the connection can hold n more bytes, or holds nothing but the
// request being read.
func (c *conn) awaitRoom(n int64) error {
	for paused := false; ; paused = true {
		c.mu.Lock()
		fits := c.mu.held == c.mu.reading || c.mu.held+n <= c.limits.maxInFlightBytes()
		var changed chan struct{}
		if !fits {
			changed = c.changedLocked()
		}
		c.mu.Unlock()
		if fits {
			return nil
		}
		if !paused {
			c.srv.stats.pausedBytes.Add(1)
		}
		select {
		case <-changed:
		case <-c.ctx.Done():
			return context.Cause(c.ctx)
		case <-c.stop:
			return errDraining
		}
	}
}

// awaitAnswerRoom waits, before a handler runs, until the connection's unwritten answers
// are within its budget or there are none. Requests read ahead would otherwise turn into
// answers a peer that does not read makes the server hold. Answers drain whatever
// handlers do (or the write deadline closes the connection), so this wait cannot close a
// cycle.
func (c *conn) awaitAnswerRoom() error {
	for {
		c.mu.Lock()
		fits := c.mu.answers < c.limits.maxInFlightBytes()
		var changed chan struct{}
		if !fits {
			changed = c.changedLocked()
		}
		c.mu.Unlock()
		if fits {
			return nil
		}
		select {
		case <-changed:
		case <-c.ctx.Done():
			return context.Cause(c.ctx)
		}
	}
}

// changedLocked returns the channel closed the next time the connection holds less, in
// bytes or in requests.
func (c *conn) changedLocked() chan struct{} {
	if c.mu.changed == nil {
		c.mu.changed = make(chan struct{})
	}
	return c.mu.changed
}

// wakeLocked wakes whoever waits for the connection to hold less.
func (c *conn) wakeLocked() {
	if c.mu.changed != nil {
		close(c.mu.changed)
		c.mu.changed = nil
	}
}

// dispatched hands what the request being read holds over to it, now that it is in
// flight, and counts it in flight.
func (c *conn) dispatched() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.mu.reading
	c.mu.reading = 0
	c.mu.inFlight++
	c.srv.stats.inFlight.Add(1)
	return n
}

// charge counts an answer's n bytes at once, past the budgets if need be: the answer
// exists already, and writing it is what frees them.
func (c *conn) charge(n int64) {
	c.budget.charge(n)
	c.mu.Lock()
	c.mu.held += n
	c.mu.answers += n
	c.mu.Unlock()
	c.srv.stats.held.Add(n)
}

// release gives back n bytes held by a request in flight (answer is false) or by an
// answer, and wakes whoever waits for the connection to hold less.
func (c *conn) release(n int64, answer bool) {
	c.mu.Lock()
	if answer {
		c.mu.answers -= n
	}
	c.releaseLocked(n)
	c.mu.Unlock()
}

// releaseReading gives back n bytes of the request being read: a frame buffer it outgrew.
func (c *conn) releaseReading(n int64) {
	c.mu.Lock()
	c.mu.reading -= n
	c.releaseLocked(n)
	c.mu.Unlock()
}

func (c *conn) releaseLocked(n int64) {
	if n == 0 {
		return
	}
	c.mu.held -= n
	c.srv.stats.held.Add(-n)
	c.budget.release(n)
	c.wakeLocked()
	if c.mu.emptied != nil && c.mu.held == c.mu.reading {
		close(c.mu.emptied)
		c.mu.emptied = nil
	}
}

// releaseAll gives back whatever the connection still holds once it is done.
func (c *conn) releaseAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.reading, c.mu.answers = 0, 0
	c.releaseLocked(c.mu.held)
}
