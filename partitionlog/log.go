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
// errors.Is and map them to Kafka error codes at the edge. Append's refusals of a batch's
// contents come as a *ValidationError, which also names the records to blame (KIP-467).
var (
	ErrCorruptBatch     = errors.New("corrupt record batch")     // CORRUPT_MESSAGE (2)
	ErrInvalidRecord    = errors.New("invalid record batch")     // INVALID_RECORD (87)
	ErrInvalidTimestamp = errors.New("invalid record timestamp") // INVALID_TIMESTAMP (32)
	ErrMessageTooLarge  = errors.New("record batch too large")   // MESSAGE_TOO_LARGE (10)
	// ErrUnsupportedCompression: a batch's codec is none of Kafka's five (0 to 4).
	// UNSUPPORTED_COMPRESSION_TYPE (76).
	ErrUnsupportedCompression = errors.New("unsupported compression codec")
	// ErrTransactionalIDRequired: transactional batches in a produce request that names no
	// transactional id, which Kafka answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
	ErrTransactionalIDRequired = errors.New("transactional batch without a transactional id")
	ErrOffsetOutOfRange        = errors.New("offset out of range")          // OFFSET_OUT_OF_RANGE (1)
	ErrOutOfOrderSequence      = errors.New("out of order sequence number") // OUT_OF_ORDER_SEQUENCE_NUMBER (45)
	ErrInvalidProducerEpoch    = errors.New("invalid producer epoch")       // INVALID_PRODUCER_EPOCH (47)
	ErrClosed                  = errors.New("partition log closed")
	// ErrOffsetGap says batches copied from the leader do not continue the log at its end
	// offset (they start above it, or straddle it), or answer a fetch at another offset:
	// the follower must truncate to the divergence point or refetch from EndOffset.
	ErrOffsetGap = errors.New("batches do not continue the log at its end offset")
	// ErrStorage marks a log whose write, fsync or roll failed (a full disk, a dying device):
	// it takes no more appends until reopened, which recovers it. KAFKA_STORAGE_ERROR (56).
	ErrStorage = errors.New("partition log storage failed")
	// ErrNoSections says ReadSections cannot hand out *os.File sections because the log's
	// FS is not the operating system's; use Read.
	ErrNoSections = errors.New("partition log has no OS files to hand out")
	// ErrCorruptCheckpoint marks a checkpoint file whose contents do not parse. Open repairs
	// the ones it can rebuild and refuses to guess the log start offset (recover.go).
	ErrCorruptCheckpoint = errors.New("corrupt checkpoint file")
)

// Config sizes a partition log and sets its retention and flush policy. Zero fields take
// Kafka's defaults. SetConfig changes a running log; FS and Now are fixed at Open.
type Config struct {
	// SegmentBytes: roll when the active .log would exceed this (segment.bytes, 1 GiB). At
	// most 2 GiB - 1, since index positions are 32-bit. A batch larger than this still goes
	// into a segment of its own.
	SegmentBytes int64
	// SegmentMs: roll when a batch arrives whose largest timestamp is more than this after
	// the active segment's first batch's (segment.ms, 7 days); when that first batch has no
	// timestamp, when the segment was created longer ago than this.
	SegmentMs int64
	// IndexIntervalBytes: bytes of log between sparse index entries (index.interval.bytes, 4096).
	IndexIntervalBytes int32
	// MaxMessageBytes: the largest batch Append accepts (max.message.bytes, 1048588).
	MaxMessageBytes int32
	// MaxIndexBytes: roll when either index file would exceed this (segment.index.bytes, 10 MiB).
	MaxIndexBytes int32

	// RetentionMs: EnforceRetention deletes sealed segments whose largest timestamp is older
	// than this (retention.ms, 7 days); -1 keeps them forever.
	RetentionMs int64
	// RetentionBytes: EnforceRetention deletes the oldest sealed segments while the log
	// would still hold at least this many bytes without them (retention.bytes); 0 or -1
	// means no limit, Kafka's default.
	RetentionBytes int64

	// FlushMessages: fsync the active segment once this many records were appended since
	// the last fsync (flush.messages); 0 never forces one by count, which is Kafka's default
	// in effect. See the package documentation for the trade-off.
	FlushMessages int64
	// FlushMs: fsync at an append when the last fsync is older than this (flush.ms); 0
	// never forces one by time.
	FlushMs int64

	// MessageTimestampType is "CreateTime" (the default: keep the producer's timestamps) or
	// "LogAppendTime" (message.timestamp.type): stamp each batch's maxTimestamp with the
	// append time and set attribute bit 3, recomputing the CRC.
	MessageTimestampType string

	// FS is where the files live; nil is the operating system's.
	FS FS
	// Now is the clock for roll, retention, flush and LogAppendTime; nil is time.Now.
	Now func() time.Time

	// fileCache bounds open segment files; nil is the process's (filecache.go). Tests set
	// small ones.
	fileCache *fileCache
}

// Kafka's names for the two timestamp types.
const (
	CreateTime    = "CreateTime"
	LogAppendTime = "LogAppendTime"
)

const week = int64(7 * 24 * time.Hour / time.Millisecond)

// withDefaults fills zero fields and rejects values that cannot work, naming the field.
func (c Config) withDefaults() (Config, error) {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 1 << 30
	}
	if c.SegmentMs == 0 {
		c.SegmentMs = week
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
	if c.RetentionMs == 0 {
		c.RetentionMs = week
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = -1
	}
	if c.MessageTimestampType == "" {
		c.MessageTimestampType = CreateTime
	}
	if c.FS == nil {
		c.FS = osFS{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.fileCache == nil {
		c.fileCache = defaultFileCache
	}
	switch {
	case c.SegmentBytes < 0 || c.SegmentBytes > math.MaxInt32:
		return c, fmt.Errorf("partitionlog: SegmentBytes %d out of range [1, %d]", c.SegmentBytes, math.MaxInt32)
	case c.SegmentMs < 0:
		return c, fmt.Errorf("partitionlog: SegmentMs %d is negative", c.SegmentMs)
	case c.IndexIntervalBytes < 0:
		return c, fmt.Errorf("partitionlog: IndexIntervalBytes %d is negative", c.IndexIntervalBytes)
	case c.MaxMessageBytes < headerSize:
		return c, fmt.Errorf("partitionlog: MaxMessageBytes %d below a batch header (%d)", c.MaxMessageBytes, headerSize)
	case c.MaxIndexBytes < timeEntrySize:
		return c, fmt.Errorf("partitionlog: MaxIndexBytes %d below one entry (%d)", c.MaxIndexBytes, timeEntrySize)
	case c.RetentionMs < -1:
		return c, fmt.Errorf("partitionlog: RetentionMs %d: want -1 (unlimited) or more", c.RetentionMs)
	case c.RetentionBytes < -1:
		return c, fmt.Errorf("partitionlog: RetentionBytes %d: want -1 (unlimited) or more", c.RetentionBytes)
	case c.FlushMessages < 0:
		return c, fmt.Errorf("partitionlog: FlushMessages %d is negative", c.FlushMessages)
	case c.FlushMs < 0:
		return c, fmt.Errorf("partitionlog: FlushMs %d is negative", c.FlushMs)
	case c.MessageTimestampType != CreateTime && c.MessageTimestampType != LogAppendTime:
		return c, fmt.Errorf("partitionlog: MessageTimestampType %q: want %q or %q", c.MessageTimestampType, CreateTime, LogAppendTime)
	}
	return c, nil
}

// Hooks lets the caller observe storage events; nil fields are no-ops. They run on the
// goroutine that caused the event, with locks held: keep them quick.
type Hooks struct {
	OnRecover func(dir string, segments int, truncatedBytes int64, took time.Duration)
	OnRoll    func(dir string, newBaseOffset int64)
	// OnRecoverProgress reports, at most every ~500ms while Open reads segments, how many
	// of the bytesTotal bytes of .log files it has checked so far.
	OnRecoverProgress func(dir string, bytesChecked, bytesTotal int64)
}

// Log is one partition's log on disk. It is safe for concurrent use: appends and truncations
// run one at a time, while readers take a snapshot under a short lock and then read files
// without it.
//
// Lock order: writer, then files, then hwFile, then mu.
type Log struct {
	dir       string
	fs        FS               // fixed at Open
	now       func() time.Time // fixed at Open
	fileCache *fileCache       // fixed at Open
	cfg       Config           // written by SetConfig holding writer and mu; read holding either (config)
	hooks     Hooks
	logger    *slog.Logger

	// writer serializes the methods that change the log (Append, TruncateTo, Sync,
	// EnforceRetention, DeleteRecordsBefore, SetConfig, Close) and guards what only they use.
	writer struct {
		sync.Mutex
		producers producerMap
		failed    error     // set once by fail; wraps ErrStorage
		unflushed int64     // records appended since the last fsync of the active segment
		lastFlush time.Time // when the active segment was last fsynced (or opened, or rolled)
	}

	// files is held shared while Read and OffsetForTimestamp read segment files, and
	// exclusively by TruncateTo and Close, which shorten or close them under readers' feet.
	// Segments that retention or DeleteRecordsBefore remove need no exclusion: readers hold
	// a reference on each segment they read (segment.acquire), so its file stays open.
	files sync.RWMutex

	// hwFile serializes writes of the high-watermark file (highwatermark.go), which
	// SetHighWatermark makes without the writer lock.
	hwFile struct {
		sync.Mutex
		persisted int64     // the value in the file; -1 when there is none
		written   time.Time // when it was last written
	}

	// mu guards what readers snapshot. It is held only for short sections without I/O.
	mu struct {
		sync.Mutex
		segments []*segment // ascending base offsets; replaced on change, never edited in place
		start    int64      // log start offset
		end      int64      // log end offset: the next offset to assign
		epochs   epochCache
		hw       int64         // high watermark as set, <= end; HighWatermark raises it to start
		txns     txnState      // ongoing and aborted transactions (txn.go)
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

// Sync fsyncs the active segment's files and writes the high watermark if it changed. It
// returns ErrClosed after Close, and ErrStorage when the fsync or the high-watermark write
// fails (the log then takes no more appends) or the log failed before.
func (l *Log) Sync() error {
	l.writer.Lock()
	defer l.writer.Unlock()
	active, err := l.activeSegment()
	if err == nil {
		err = l.writer.failed
	}
	if err == nil {
		err = l.flushWriterLocked(active)
	}
	if err == nil {
		if err = l.checkpointHighWatermark(true); err != nil {
			err = l.failWriterLocked("high-watermark checkpoint", err)
		}
	}
	if err != nil {
		return fmt.Errorf("partition %s: sync: %w", l.dir, err)
	}
	return nil
}

// flushWriterLocked fsyncs the active segment and restarts the flush counters; a failure
// fails the log. l.writer is held.
func (l *Log) flushWriterLocked(active *segment) error {
	if err := active.sync(); err != nil {
		return l.failWriterLocked("fsync", err)
	}
	l.writer.unflushed = 0
	l.writer.lastFlush = l.now()
	return nil
}

// failWriterLocked puts the log in the failed state after a write, fsync or roll failed, and
// returns the error every later change gets (wrapping ErrStorage and the first cause). What
// readers see stays as published: a batch is published only after it was written whole, so
// the failed one is invisible, and the next Open truncates it. Other logs are unaffected.
// l.writer is held.
func (l *Log) failWriterLocked(op string, cause error) error {
	if l.writer.failed == nil {
		l.writer.failed = fmt.Errorf("%w: %s: %w", ErrStorage, op, cause)
		l.logger.Error("partition log failed: it serves reads but rejects appends with KAFKA_STORAGE_ERROR until reopened",
			"op", op, "err", cause,
			"action", "free disk space or replace the failing device (see the kernel log), then restart the node or reopen the partition; recovery truncates the partial write and followers refetch from the leader")
	}
	return l.writer.failed
}

// config returns the settings in force. Writers read it once per operation.
func (l *Log) config() Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// SetConfig applies new settings to a running log, validated as Open validates them. They
// take effect at the next append, roll or EnforceRetention; existing segments are not
// rewritten. FS and Now cannot change: they are ignored. Errors: an invalid cfg, ErrClosed.
func (l *Log) SetConfig(cfg Config) error {
	cfg.FS, cfg.Now, cfg.fileCache = l.fs, l.now, l.fileCache
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	l.writer.Lock()
	defer l.writer.Unlock()
	if _, err := l.activeSegment(); err != nil {
		return err
	}
	l.mu.Lock()
	l.cfg = cfg
	l.mu.Unlock()
	l.logger.Info("partition log config changed", "segment_bytes", cfg.SegmentBytes, "segment_ms", cfg.SegmentMs,
		"retention_ms", cfg.RetentionMs, "retention_bytes", cfg.RetentionBytes, "flush_messages", cfg.FlushMessages,
		"flush_ms", cfg.FlushMs, "timestamp_type", cfg.MessageTimestampType)
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

// Close writes the active segment's index files, syncs it, writes the high watermark if it
// changed, and closes every file (a segment that a ReadSections caller still holds closes
// at its release). Later calls return ErrClosed, and the Changed channel is closed so
// waiters wake.
func (l *Log) Close() error {
	l.writer.Lock()
	defer l.writer.Unlock()
	l.files.Lock()
	defer l.files.Unlock()
	hwErr := l.checkpointHighWatermark(true) // nothing when already closed
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return fmt.Errorf("partition %s: %w", l.dir, ErrClosed)
	}
	l.mu.closed = true
	close(l.mu.changed)
	segs := l.mu.segments
	active := segs[len(segs)-1]
	aborted := abortedIn(l.mu.txns.aborted, active.base, 1<<63-1)
	l.mu.Unlock()

	errs := []error{hwErr, active.writeIndexFiles(l.dir, active.index, active.times), writeTxnIndex(l.fs, l.dir, active.base, aborted), active.sync()}
	if errors.Join(errs...) == nil {
		// Producer state as of the end, so the next Open need not read the headers
		// (written after the active segment's .txnindex, which it counts on).
		l.writeSnapshotWriterLocked(active.w.next)
	}
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
