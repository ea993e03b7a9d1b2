package routing

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Cache keeps the latest Snapshot of a Store in memory. Request paths read it with
// Snapshot(), which never blocks and never touches the Store. One goroutine refreshes it
// when the Store announces a change, when Refresh is called (say after a NOT_LEADER
// answer), and every PollInterval as a safety net against a lost notification.
type Cache struct {
	store  Store
	logger *slog.Logger
	poll   time.Duration

	snapshot atomic.Pointer[Snapshot]
	lastErr  atomic.Pointer[error] // the last refresh's failure, nil once one succeeds
	refresh  chan chan error
	stop     chan struct{}
	done     chan struct{}

	mu struct {
		sync.Mutex
		changed chan struct{} // closed and replaced whenever a newer snapshot is installed
	}
}

// DefaultPollInterval bounds how stale a cache can be if a notification is lost.
const DefaultPollInterval = 5 * time.Second

// NewCache loads the first snapshot (failing if the Store cannot be read) and starts
// the refresh loop. poll <= 0 means DefaultPollInterval.
func NewCache(ctx context.Context, store Store, poll time.Duration, logger *slog.Logger) (*Cache, error) {
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	c := &Cache{
		store:   store,
		logger:  logger,
		poll:    poll,
		refresh: make(chan chan error),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.mu.changed = make(chan struct{})
	snap, err := store.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("routing: load metadata: %w", err)
	}
	c.snapshot.Store(snap)
	changes, cancel := store.Subscribe()
	go c.run(changes, cancel)
	return c, nil
}

// Snapshot returns the latest metadata. Never modify it.
func (c *Cache) Snapshot() *Snapshot { return c.snapshot.Load() }

// Changed returns a channel closed once a snapshot newer than the current one is installed.
func (c *Cache) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.changed
}

// Refresh reloads the snapshot from the Store now and waits for it.
func (c *Cache) Refresh(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case c.refresh <- reply:
	case <-c.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err returns why the last refresh failed, or nil if it succeeded: the cache then
// serves a copy that may be stale (for readiness checks).
func (c *Cache) Err() error {
	if err := c.lastErr.Load(); err != nil {
		return *err
	}
	return nil
}

// Close stops the refresh loop.
func (c *Cache) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

func (c *Cache) run(changes <-chan struct{}, cancel func()) {
	defer close(c.done)
	defer cancel()
	ticker := time.NewTicker(c.poll)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-changes:
			c.load()
		case <-ticker.C:
			c.load()
		case reply := <-c.refresh:
			reply <- c.load()
		}
	}
}

// load installs the Store's snapshot if it is newer than the cached one.
func (c *Cache) load() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snap, err := c.store.Snapshot(ctx)
	if err != nil {
		if c.lastErr.Load() == nil {
			c.logger.Warn("cannot refresh routing metadata; serving the cached copy until the store answers again", "version", c.Snapshot().Version, "err", err)
		}
		err = fmt.Errorf("routing: refresh metadata: %w", err)
		c.lastErr.Store(&err)
		return err
	}
	if c.lastErr.Swap(nil) != nil {
		c.logger.Info("routing metadata store answers again", "version", snap.Version)
	}
	if snap.Version <= c.Snapshot().Version && snap.Incarnation == c.Snapshot().Incarnation {
		return nil
	}
	c.snapshot.Store(snap)
	c.mu.Lock()
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}
