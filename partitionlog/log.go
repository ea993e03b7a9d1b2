package partitionlog

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
)

// Sentinel errors. Methods wrap them with the directory and offset; callers match them with
// errors.Is and map them to Kafka error codes at the edge.
var (
	ErrCorruptBatch         = errors.New("corrupt record batch")         // CORRUPT_MESSAGE (2)
	ErrInvalidRecord        = errors.New("invalid record batch")         // INVALID_RECORD (87)
	ErrMessageTooLarge      = errors.New("record batch too large")       // MESSAGE_TOO_LARGE (10)
	ErrOffsetOutOfRange     = errors.New("offset out of range")          // OFFSET_OUT_OF_RANGE (1)
	ErrOutOfOrderSequence   = errors.New("out of order sequence number") // OUT_OF_ORDER_SEQUENCE_NUMBER (45)
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")       // INVALID_PRODUCER_EPOCH (47)
	ErrClosed               = errors.New("partition log closed")
)

// Config sizes a partition log. Zero fields take Kafka's defaults.
type Config struct {
	// SegmentBytes: roll when the active .log would exceed this (segment.bytes, 1 GiB). At
	// most 2 GiB - 1, since index positions are 32-bit. A batch larger than this still goes
	// into a segment of its own.
	SegmentBytes int64
	// IndexIntervalBytes: bytes of log between sparse index entries (index.interval.bytes, 4096).
	IndexIntervalBytes int32
	// MaxMessageBytes: the largest batch Append accepts (max.message.bytes, 1048588).
	MaxMessageBytes int32
	// MaxIndexBytes: roll when either index file would exceed this (segment.index.bytes, 10 MiB).
	MaxIndexBytes int32
}

// withDefaults fills zero fields and rejects values that cannot work, naming the field.
func (c Config) withDefaults() (Config, error) {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 1 << 30
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = 4096
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 1048588
	}
	if c.MaxIndexBytes == 0 {
		c.MaxIndexBytes = 10 << 20
	}
	switch {
	case c.SegmentBytes < 0 || c.SegmentBytes > math.MaxInt32:
		return c, fmt.Errorf("partitionlog: SegmentBytes %d out of range [1, %d]", c.SegmentBytes, math.MaxInt32)
	case c.IndexIntervalBytes < 0:
		return c, fmt.Errorf("partitionlog: IndexIntervalBytes %d is negative", c.IndexIntervalBytes)
	case c.MaxMessageBytes < headerSize:
		return c, fmt.Errorf("partitionlog: MaxMessageBytes %d below a batch header (%d)", c.MaxMessageBytes, headerSize)
	case c.MaxIndexBytes < timeEntrySize:
		return c, fmt.Errorf("partitionlog: MaxIndexBytes %d below one entry (%d)", c.MaxIndexBytes, timeEntrySize)
	}
	return c, nil
}

// Hooks lets the caller observe storage events; nil fields are no-ops. They run on the
// goroutine that caused the event, with locks held: keep them quick.
type Hooks struct {
	OnRecover func(dir string, segments int, truncatedBytes int64, took time.Duration)
	OnRoll    func(dir string, newBaseOffset int64)
}

// Log is one partition's log on disk. It is safe for concurrent use: appends and truncations
// run one at a time, while readers take a snapshot under a short lock and then read files
// without it.
//
// Lock order: writer, then files, then mu.
type Log struct {
	dir    string
	cfg    Config
	hooks  Hooks
	logger *slog.Logger

	// writer serializes the methods that change the log (Append, TruncateTo, Sync, Close)
	// and guards what only they use.
	writer struct {
		sync.Mutex
		producers producerMap
	}

	// files is held shared while reading segment files, and exclusively by TruncateTo and
	// Close, which shorten, delete or close them under readers' feet.
	files sync.RWMutex

	// mu guards what readers snapshot. It is held only for short sections without I/O.
	mu struct {
		sync.Mutex
		segments []*segment // ascending base offsets; replaced on change, never edited in place
		start    int64      // log start offset
		end      int64      // log end offset: the next offset to assign
		epochs   epochCache
		changed  chan struct{} // closed and replaced when the log changes
		closed   bool
	}
}

// StartOffset returns the log start offset, the first offset still stored.
func (l *Log) StartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.start
}

// EndOffset returns the log end offset: the offset the next appended record will get.
func (l *Log) EndOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.end
}

// Changed returns a channel closed at the next successful Append (also at TruncateTo and
// Close, so a waiting long-poll re-checks and sees what happened).
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.changed
}

func (l *Log) signalChangedLocked() {
	if !l.mu.closed {
		close(l.mu.changed)
		l.mu.changed = make(chan struct{})
	}
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch as Kafka's LeaderEpochFileCache.endOffsetFor
// does (KIP-101, KIP-279):
//   - epoch is the latest known: (epoch, log end offset);
//   - otherwise the largest known epoch <= epoch and the start offset of the next one;
//   - epoch below the first known: (epoch, start of the first known epoch);
//   - epoch above the latest known, negative, or no history: (-1, -1).
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.epochs.endOffsetFor(epoch, l.mu.end)
}

// Sync fsyncs the active segment's files. It returns ErrClosed after Close.
func (l *Log) Sync() error {
	l.writer.Lock()
	defer l.writer.Unlock()
	active, err := l.activeSegment()
	if err != nil {
		return err
	}
	if err := active.sync(); err != nil {
		return fmt.Errorf("partition %s: %w", l.dir, err)
	}
	return nil
}

// activeSegment returns the segment appends go to, or ErrClosed.
func (l *Log) activeSegment() (*segment, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return nil, fmt.Errorf("partition %s: %w", l.dir, ErrClosed)
	}
	return l.mu.segments[len(l.mu.segments)-1], nil
}

// Close syncs the active segment and closes every file. Later calls return ErrClosed, and
// the Changed channel is closed so waiters wake.
func (l *Log) Close() error {
	l.writer.Lock()
	defer l.writer.Unlock()
	l.files.Lock()
	defer l.files.Unlock()
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return fmt.Errorf("partition %s: %w", l.dir, ErrClosed)
	}
	l.mu.closed = true
	close(l.mu.changed)
	segs := l.mu.segments
	l.mu.Unlock()

	errs := []error{segs[len(segs)-1].sync()}
	for _, s := range segs {
		errs = append(errs, s.close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("partition %s: close: %w", l.dir, err)
	}
	return nil
}

func discardIfNil(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}
