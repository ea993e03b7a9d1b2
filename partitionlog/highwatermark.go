package partitionlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The high watermark: the offset below which every in-sync replica holds the log, so
// consumers read up to it and a replica that restarts knows what was committed. The
// replication layer computes it (the minimum log end offset over the ISR on the leader;
// the leader's value on a follower) and hands it to SetHighWatermark; the log keeps it
// within [StartOffset, EndOffset] and persists it, as Kafka's replication-offset-checkpoint
// does for all of a broker's partitions, in a per-partition file.

const (
	// highWatermarkName is the partition's high-watermark file: "0\n<offset>\n".
	highWatermarkName = "high-watermark"
	// highWatermarkEvery bounds how often SetHighWatermark rewrites the file.
	highWatermarkEvery = time.Second
)

// SetHighWatermark raises the high watermark to hw, clamped to EndOffset. A lower value is
// ignored: only TruncateTo lowers it. The file is rewritten (atomically, through the FS) at
// most every second when the value changed, and at every roll, Sync and Close, so after a
// crash it may lag; Open clamps it to the recovered end. A failed write is logged and
// retried at the next call. After Close it does nothing.
func (l *Log) SetHighWatermark(hw int64) {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return
	}
	l.mu.hw = max(l.mu.hw, min(hw, l.mu.end))
	l.mu.Unlock()
	if err := l.checkpointHighWatermark(false); err != nil {
		l.logger.Warn("writing the high watermark failed; will retry", "err", err)
	}
}

// HighWatermark returns the high watermark: at least StartOffset, at most EndOffset. Before
// any SetHighWatermark on a log without a high-watermark file it is the log start offset,
// as in Kafka.
func (l *Log) HighWatermark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.highWatermarkLocked()
}

// highWatermarkLocked applies the log start: retention and DeleteRecordsBefore may pass the
// value set. l.mu is held.
func (l *Log) highWatermarkLocked() int64 {
	return min(max(l.mu.hw, l.mu.start), l.mu.end)
}

// lowerHighWatermarkLocked keeps the high watermark at or below a new, lower end offset,
// for TruncateTo. l.mu is held.
func (l *Log) lowerHighWatermarkLocked(end int64) {
	l.mu.hw = min(l.mu.hw, end)
}

// checkpointHighWatermark writes the high watermark to its file when it changed and, unless
// force, the last write is older than highWatermarkEvery. It does nothing once the log is
// closed. It takes hwFile and then mu: callers may hold writer and files, not mu.
func (l *Log) checkpointHighWatermark(force bool) error {
	l.hwFile.Lock()
	defer l.hwFile.Unlock()
	l.mu.Lock()
	hw, closed := l.mu.hw, l.mu.closed
	l.mu.Unlock()
	now := l.now()
	switch {
	case closed, hw == l.hwFile.persisted:
		return nil
	case !force && now.Sub(l.hwFile.written) < highWatermarkEvery:
		return nil
	}
	if err := writeOffsetFile(l.fs, l.dir, highWatermarkName, hw); err != nil {
		return err
	}
	l.hwFile.persisted, l.hwFile.written = hw, now
	return nil
}

// loadHighWatermark reads the high-watermark file at Open, clamped to [start, end]: a crash
// may have lost records below the value written. A missing file gives the log start
// offset, and so does a corrupt one: a high watermark too low is safe (consumers wait until
// the leader, which recomputes it from the ISR, raises it; truncation follows the epochs),
// while one too high would show uncommitted records. A file that cannot be read now
// (EMFILE, EIO) fails Open.
func (l *Log) loadHighWatermark() error {
	hw, found, err := readOffsetFile(l.fs, l.dir, highWatermarkName)
	switch {
	case errors.Is(err, ErrCorruptCheckpoint):
		l.logger.Warn("corrupt high-watermark file, starting from the log start offset; it is rewritten at the next update", "err", err)
	case err != nil:
		return err
	}
	l.hwFile.Lock()
	defer l.hwFile.Unlock()
	l.hwFile.persisted = -1
	if found && err == nil {
		l.hwFile.persisted = hw
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !found || err != nil {
		hw = l.mu.start
	}
	if hw > l.mu.end {
		l.logger.Warn("high watermark past the recovered log end: lowering it", "high_watermark", hw, "end", l.mu.end)
	}
	l.mu.hw = min(max(hw, l.mu.start), l.mu.end)
	return nil
}

// writeOffsetFile replaces dir/name with "0\n<offset>\n" (version, offset), atomically.
func writeOffsetFile(fs FS, dir, name string, offset int64) error {
	b := fmt.Appendf(nil, "0\n%d\n", offset)
	if err := writeFileAtomicFS(fs, dir, name, b); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// readOffsetFile loads a file writeOffsetFile wrote. It tells three cases apart: found is
// false when there is none; an error wrapping ErrCorruptCheckpoint when its contents do not
// parse; any other error when it cannot be read now (EMFILE, EIO), which callers must not
// take for corruption.
func readOffsetFile(fs FS, dir, name string) (offset int64, found bool, err error) {
	path := filepath.Join(dir, name)
	b, err := readFSFile(fs, path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", path, err)
	}
	offset, err = parseOffsetFile(b)
	if err != nil {
		return 0, false, fmt.Errorf("%w %s: %w", ErrCorruptCheckpoint, path, err)
	}
	return offset, true, nil
}

// parseOffsetFile parses "0\n<offset>\n".
func parseOffsetFile(b []byte) (int64, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || strings.TrimSpace(lines[0]) != "0" {
		return 0, fmt.Errorf("want version 0 and one offset, got %q", b)
	}
	offset, err := strconv.ParseInt(strings.TrimSpace(lines[1]), 10, 64)
	if err != nil || offset < 0 {
		return 0, fmt.Errorf("bad offset %q", lines[1])
	}
	return offset, nil
}
