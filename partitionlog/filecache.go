package partitionlog

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Open segment files are bounded per process, not per partition: a node that holds tens of
// thousands of replicas cannot keep a descriptor for every segment of every one of them
// (one CreateTopics of 20,000 partitions ran a node out of descriptors). Each segment opens
// its .log on first use and registers it with a fileCache; when more are registered than
// the limit, the cache closes idle ones, and the next use reopens the file by its path.
// Index files are not kept open at all: they are read whole at Open and written whole when
// a segment is sealed or the log closed. An idle partition therefore holds no descriptor
// once the cache needs its slot, and a busy one holds one.
//
// Which file is idle: a segment's refs count the log's list (one) and every user. Users
// take a reference for as long as they use the file (segment.pin, or a reader's snapshot,
// which ReadSections keeps until release, so a file being sent with sendfile is never
// closed under it). The cache closes a file only when refs is exactly one and that one is
// the list's: before the list drops its reference (retention, DeleteRecordsBefore,
// TruncateTo, compaction, Close) the segment is marked retired, which the cache leaves alone;
// and before its files are renamed or removed it is also opened, so readers that took it
// earlier keep reading the same file. The last reference closes a retired segment's file.
//
// Eviction is a clock (second chance): every use sets a flag, the hand clears it, and a file
// is closed when the hand finds its flag clear, so uses cost an atomic store and no lock.

// fileCache bounds the segment .log files open in the process.
type fileCache struct {
	limit int

	mu   sync.Mutex
	ring []*segment // registered segments, whose file is (or was) open; each knows its slot
	hand int
}

// defaultFileCache is shared by every log opened without Config.files: the descriptors are
// the process's to share.
var defaultFileCache = newFileCache(defaultOpenFileLimit())

// newFileCache returns a cache that keeps at most limit idle files open.
func newFileCache(limit int) *fileCache {
	return &fileCache{limit: max(limit, 1)}
}

// defaultOpenFileLimit leaves half the process's descriptors to segment files, and the rest
// to connections, index and checkpoint files and everything else. Go raises the soft limit
// to the hard limit at start on Linux, so this is half the hard limit there.
func defaultOpenFileLimit() int {
	n, ok := processFileLimit()
	if !ok {
		return 512
	}
	return int(min(max(n/2, 64), 1<<20))
}

// register adds s, whose file was just opened, and closes idle files while more than the
// limit are registered. s.file.mu is not held: eviction takes victims' locks with TryLock
// under c.mu, and a segment being opened holds its own lock while it waits for nothing.
func (c *fileCache) register(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.file.slot >= 0 {
		return
	}
	s.file.slot = len(c.ring)
	c.ring = append(c.ring, s)
	for tries := 2 * len(c.ring); len(c.ring) > c.limit && tries > 0; tries-- {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		victim := c.ring[c.hand]
		switch closed, keep := victim.evictIdle(); {
		case closed:
			c.removeLocked(victim) // the last slot moves to c.hand: look at it next
		case keep:
			c.hand++
		default: // its file is gone already (closed for good meanwhile)
			c.removeLocked(victim)
		}
	}
}

// forget removes s, whose file was closed, from the ring.
func (c *fileCache) forget(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.file.slot >= 0 {
		c.removeLocked(s)
	}
}

// removeLocked takes s out of the ring by moving the last entry into its slot.
func (c *fileCache) removeLocked(s *segment) {
	i, last := s.file.slot, len(c.ring)-1
	c.ring[i] = c.ring[last]
	c.ring[i].file.slot = i
	c.ring[last] = nil
	c.ring = c.ring[:last]
	s.file.slot = -1
}

// openFiles counts the registered segments whose file is open, for tests and metrics.
func (c *fileCache) openFiles() int {
	c.mu.Lock()
	ring := append([]*segment(nil), c.ring...)
	c.mu.Unlock()
	n := 0
	for _, s := range ring {
		s.file.mu.Lock()
		if s.file.f != nil {
			n++
		}
		s.file.mu.Unlock()
	}
	return n
}

// segmentFile is a segment's .log as the cache sees it.
type segmentFile struct {
	mu       sync.Mutex // guards f, keepOpen and dead; held to open and close, not to use f
	f        File       // nil while closed
	keepOpen bool       // never evicted: the list let go, or the path does not name this file (yet)
	dead     bool       // closed for good: the last reference was released
	used     atomic.Bool
	slot     int // index in the cache's ring, -1 when not there; guarded by the cache's mu
}

// errSegmentGone is what a use of a segment closed for good gets; it would be a bug.
var errSegmentGone = errors.New("segment file closed for good")

// pin takes a reference and returns the segment's .log, opened if the cache had closed it;
// the file stays open until unpin. The caller knows the segment is alive: it holds a
// reference, Log.mu having found it in the list, or the writer lock with s in the list,
// or it owns s before publishing it.
func (s *segment) pin() (File, error) {
	s.acquire()
	f, err := s.openFile()
	if err != nil {
		s.release()
		return nil, err
	}
	return f, nil
}

// unpin drops pin's reference.
func (s *segment) unpin() { s.release() }

// openFile returns the open .log, reopening it by path if the cache closed it. The caller
// holds a reference, which keeps the cache from closing it again.
func (s *segment) openFile() (File, error) {
	s.file.used.Store(true)
	s.file.mu.Lock()
	if f := s.file.f; f != nil {
		s.file.mu.Unlock()
		return f, nil
	}
	if s.file.dead {
		s.file.mu.Unlock()
		return nil, fmt.Errorf("segment %d: %w", s.base, errSegmentGone)
	}
	f, err := s.fs.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		s.file.mu.Unlock()
		return nil, fmt.Errorf("reopen segment %d: %w", s.base, err)
	}
	s.file.f = f
	s.file.mu.Unlock()
	s.cache.register(s)
	return f, nil
}

// adopt makes f, just opened or created, the segment's file and registers it.
func (s *segment) adopt(f File) {
	s.file.mu.Lock()
	s.file.f = f
	s.file.mu.Unlock()
	s.file.used.Store(true)
	s.cache.register(s)
}

// evictIdle closes the file if nobody uses it and it may be reopened by path. closed says
// it was closed, keep that it stays (in use, retired, or its lock busy); neither means it
// was not open. Called by the cache under its lock.
func (s *segment) evictIdle() (closed, keep bool) {
	if s.file.used.Swap(false) {
		return false, true
	}
	if !s.file.mu.TryLock() {
		return false, true
	}
	defer s.file.mu.Unlock()
	switch {
	case s.file.f == nil:
		return false, false
	case s.file.keepOpen || s.refs.Load() != 1:
		return false, true
	}
	s.file.f.Close() // a read-only use is over; writes were handed to the kernel already
	s.file.f = nil
	return true, false
}

// closeIdle closes the file now if nobody uses it, for segments Open only looked at.
func (s *segment) closeIdle() {
	s.file.mu.Lock()
	closed := s.file.f != nil && !s.file.keepOpen && s.refs.Load() == 1
	if closed {
		s.file.f.Close()
		s.file.f = nil
	}
	s.file.mu.Unlock()
	if closed {
		s.cache.forget(s)
	}
}

// retire marks the segment as leaving the list: from now on its file closes only with
// the last reference. With openFirst the file is opened first, because its path is about
// to be renamed or removed and readers holding the segment must keep reading this file.
// When the file cannot be opened nothing changes. changed says whether it was evictable
// before.
func (s *segment) retire(openFirst bool) (changed bool, err error) {
	s.file.mu.Lock()
	defer s.file.mu.Unlock()
	if openFirst && s.file.f == nil && !s.file.dead {
		f, err := s.fs.OpenFile(s.path, os.O_RDWR, 0)
		if err != nil {
			return false, fmt.Errorf("open segment %d before removing it: %w", s.base, err)
		}
		s.file.f = f
	}
	changed, s.file.keepOpen = !s.file.keepOpen, true
	return changed, nil
}

// retireAll retires segs, opening their files (retire(true)), before their files are
// renamed or removed; when one cannot be opened the others go back to normal and nothing
// is to be renamed.
func retireAll(segs []*segment) error {
	var retired []*segment
	for _, s := range segs {
		changed, err := s.retire(true)
		if err != nil {
			for _, r := range retired {
				r.allowEviction()
			}
			return err
		}
		if changed {
			retired = append(retired, s)
		}
	}
	return nil
}

// allowEviction lets the cache close the file when idle, once its path names it: for a
// compaction's output, after the swap renamed it into place.
func (s *segment) allowEviction() {
	s.file.mu.Lock()
	s.file.keepOpen = false
	s.file.mu.Unlock()
}

// closeForGood closes the file at the last release.
func (s *segment) closeForGood() error {
	s.file.mu.Lock()
	f := s.file.f
	s.file.f, s.file.dead = nil, true
	s.file.mu.Unlock()
	s.cache.forget(s)
	if f == nil {
		return nil
	}
	return f.Close()
}
