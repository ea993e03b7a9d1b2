package partitionlog

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

const (
	// deletedSuffix marks the files of a segment being deleted: renamed first, removed
	// after the new segment list is published; Open removes leftovers.
	deletedSuffix = ".deleted"
	// startOffsetCheckpointName holds the log start offset DeleteRecordsBefore set:
	// "0\n<offset>\n" (version, offset).
	startOffsetCheckpointName = "log-start-offset"
)

// EnforceRetention deletes whole sealed segments, oldest first, as Kafka's retention does
// (never the active segment, never a segment after one that is kept):
//   - retention.ms: while a segment's largest timestamp (its file's modification time if
//     no batch had one) is more than RetentionMs before now;
//   - retention.bytes: while the log would still hold at least RetentionBytes without it;
//   - log start offset: while the next segment starts at or below it (DeleteRecordsBefore).
//
// The log start offset moves up to the first remaining segment's base. The deletion is
// crash-safe: the segments' files are renamed to *.deleted and the directory synced before
// readers stop seeing them, then removed; Open removes what a crash left. A reader that
// took a segment before keeps reading it until it lets go.
//
// Errors: ErrClosed, or ErrStorage when a rename or directory sync fails (the log then takes
// no more appends).
func (l *Log) EnforceRetention(now time.Time) (deletedSegments int, err error) {
	l.writer.Lock()
	defer l.writer.Unlock()
	n, err := l.enforceRetentionWriterLocked(now)
	if err != nil {
		return 0, fmt.Errorf("partition %s: retention: %w", l.dir, err)
	}
	return n, nil
}

// sealedInfo is what retention needs to know about a sealed segment, read under l.mu.
type sealedInfo struct {
	s            *segment
	size         int64
	maxTimestamp int64
	nextBase     int64
}

func (l *Log) enforceRetentionWriterLocked(now time.Time) (int, error) {
	cfg := l.config()
	l.mu.Lock()
	closed, start, segs := l.mu.closed, l.mu.start, l.mu.segments
	var total int64
	sealed := make([]sealedInfo, 0, len(segs)-1)
	for i, s := range segs {
		total += s.size.Load()
		if i < len(segs)-1 {
			sealed = append(sealed, sealedInfo{s: s, size: s.size.Load(), maxTimestamp: s.maxTimestamp, nextBase: segs[i+1].base})
		}
	}
	l.mu.Unlock()
	switch {
	case closed:
		return 0, ErrClosed
	case l.writer.failed != nil:
		return 0, l.writer.failed
	}
	n := max(
		expiredByTime(sealed, cfg.RetentionMs, now.UnixMilli()),
		expiredBySize(sealed, cfg.RetentionBytes, total),
		belowStart(sealed, start),
	)
	if n == 0 {
		return 0, nil
	}
	old := make([]*segment, n)
	for i := range n {
		old[i] = sealed[i].s
	}
	l.logger.Info("deleting segments by retention", "segments", n, "first", old[0].base, "new_start", sealed[n-1].nextBase,
		"retention_ms", cfg.RetentionMs, "retention_bytes", cfg.RetentionBytes)
	return n, l.deleteSegmentsWriterLocked(old, sealed[n-1].nextBase)
}

// expiredByTime counts the leading segments older than retentionMs (Kafka: now - largest
// timestamp > retention.ms), stopping at the first that is not.
func expiredByTime(sealed []sealedInfo, retentionMs, nowMs int64) int {
	if retentionMs < 0 {
		return 0
	}
	for i, si := range sealed {
		ts := si.maxTimestamp
		if ts < 0 {
			ts = si.s.modTime()
		}
		if nowMs-ts <= retentionMs {
			return i
		}
	}
	return len(sealed)
}

// modTime is the .log's modification time in ms, -1 if it cannot be read. The caller
// holds the writer lock with s in the list.
func (s *segment) modTime() int64 {
	f, err := s.pin()
	if err != nil {
		return -1
	}
	defer s.unpin()
	fi, err := f.Stat()
	if err != nil {
		return -1
	}
	return fi.ModTime().UnixMilli()
}

// expiredBySize counts the leading segments Kafka's retention.bytes deletes: each one as
// long as the log, total bytes with the active segment, keeps at least retentionBytes
// without it.
func expiredBySize(sealed []sealedInfo, retentionBytes, total int64) int {
	if retentionBytes < 0 {
		return 0
	}
	diff := total - retentionBytes
	for i, si := range sealed {
		if diff-si.size < 0 {
			return i
		}
		diff -= si.size
	}
	return len(sealed)
}

// belowStart counts the leading segments holding only offsets below the log start.
func belowStart(sealed []sealedInfo, start int64) int {
	for i, si := range sealed {
		if si.nextBase > start {
			return i
		}
	}
	return len(sealed)
}

// DeleteRecordsBefore answers DeleteRecords (KIP-107): it raises the log start offset to
// offset, so reads and lookups below it fail with ErrOffsetOutOfRange even where the bytes
// remain, and deletes the sealed segments entirely below it as EnforceRetention does. The
// new start is persisted first in the log-start-offset checkpoint (atomically replaced), so
// it survives a restart. It returns the log start offset afterwards (the low watermark);
// offset at or below the current start changes nothing. The caller bounds offset by the
// high watermark, as Kafka does.
//
// Errors: ErrOffsetOutOfRange when offset is negative or past the log end, ErrClosed, or
// ErrStorage when the checkpoint or a deletion fails.
func (l *Log) DeleteRecordsBefore(offset int64) (lowWatermark int64, err error) {
	l.writer.Lock()
	defer l.writer.Unlock()
	start, err := l.deleteRecordsWriterLocked(offset)
	if err != nil {
		return start, fmt.Errorf("partition %s: delete records before %d: %w", l.dir, offset, err)
	}
	return start, nil
}

func (l *Log) deleteRecordsWriterLocked(offset int64) (int64, error) {
	l.mu.Lock()
	closed, start, end, segs := l.mu.closed, l.mu.start, l.mu.end, l.mu.segments
	l.mu.Unlock()
	switch {
	case closed:
		return start, ErrClosed
	case l.writer.failed != nil:
		return start, l.writer.failed
	case offset < 0 || offset > end:
		return start, fmt.Errorf("%w: log has [%d, %d)", ErrOffsetOutOfRange, start, end)
	case offset <= start:
		return start, nil
	}
	if err := writeStartOffsetCheckpoint(l.fs, l.dir, offset); err != nil {
		return start, l.failWriterLocked("log-start-offset checkpoint", err)
	}
	l.mu.Lock()
	l.mu.start = offset
	l.mu.epochs, _ = l.mu.epochs.truncateFromStart(offset)
	l.mu.txns.dropBelow(offset)
	l.mu.Unlock()
	n := 0
	for n < len(segs)-1 && segs[n+1].base <= offset {
		n++
	}
	if n > 0 {
		if err := l.deleteSegmentsWriterLocked(segs[:n:n], offset); err != nil {
			return offset, err
		}
	}
	return offset, nil
}

// deleteSegmentsWriterLocked removes old, the oldest sealed segments, crash-safely: rename
// their files to *.deleted in ascending order (so a crash leaves a prefix to finish), sync
// the directory, publish the shorter list with start raised to at least start, then remove
// the files; each .log closes when its last reader lets go. l.writer is held.
func (l *Log) deleteSegmentsWriterLocked(old []*segment, start int64) error {
	if err := retireAll(old); err != nil {
		return err
	}
	for _, s := range old {
		if err := s.renameFiles(l.dir, deletedSuffix); err != nil {
			return l.failWriterLocked("rename for deletion", err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.failWriterLocked("sync dir", err)
	}
	l.mu.Lock()
	err := l.publishSegmentsLocked(old, nil, start)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range old {
		errs = append(errs, s.removeFiles(l.dir, deletedSuffix), s.close())
	}
	if err := errors.Join(errs...); err != nil {
		// Published already: Open removes the leftovers.
		l.logger.Warn("removing deleted segment files", "err", err)
	}
	return nil
}

// publishSegmentsLocked is the one step that changes which sealed segments readers see, for
// retention, DeleteRecordsBefore and compaction alike. It replaces old, a run of consecutive
// sealed segments of the list (never the active one), by repl (ascending, holding no offset
// outside old's range; empty to drop them), and raises the log start offset to start and to
// the first segment's base. It does no I/O and cannot half-happen: the caller has made the
// new state durable before (retention renames old's files to *.deleted; a compaction would
// rename its new files into place), and closes old after (segment.close), which keeps each
// .log open until its last reader releases it. l.writer and l.mu are held.
func (l *Log) publishSegmentsLocked(old, repl []*segment, start int64) error {
	segs := l.mu.segments
	i := slices.Index(segs, old[0])
	if i < 0 || i+len(old) >= len(segs) || !slices.Equal(segs[i:i+len(old)], old) {
		return fmt.Errorf("publish segments: %d segments from %d are not a run of sealed segments", len(old), old[0].base)
	}
	next := slices.Concat(segs[:i], repl, segs[i+len(old):])
	l.mu.segments = next
	l.mu.start = max(l.mu.start, start, next[0].base)
	l.mu.epochs, _ = l.mu.epochs.truncateFromStart(l.mu.start)
	l.mu.txns.dropBelow(l.mu.start)
	return nil
}

// renameFiles renames the segment's three files to name+suffix; missing ones are skipped.
func (s *segment) renameFiles(dir, suffix string) error {
	for _, ext := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		p := segmentPath(dir, s.base, ext)
		if err := s.fs.Rename(p, p+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// removeFiles removes the segment's three files named name+suffix.
func (s *segment) removeFiles(dir, suffix string) error {
	var errs []error
	for _, ext := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := s.fs.Remove(segmentPath(dir, s.base, ext) + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func writeStartOffsetCheckpoint(fs FS, dir string, offset int64) error {
	return writeOffsetFile(fs, dir, startOffsetCheckpointName, offset)
}

// readStartOffsetCheckpoint loads the checkpoint; found is false when there is none.
func readStartOffsetCheckpoint(fs FS, dir string) (offset int64, found bool, err error) {
	return readOffsetFile(fs, dir, startOffsetCheckpointName)
}
