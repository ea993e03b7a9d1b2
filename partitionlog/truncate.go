package partitionlog

import (
	"errors"
	"fmt"
)

// TruncateTo drops every record at or after offset, for a follower whose log diverged from
// its leader's. It cuts whole batches, as Kafka does: a batch containing offset goes
// entirely, so the log may end below offset. Segments past the cut are deleted, epoch
// history entries starting at or after the new end dropped, producer state rebuilt, and
// the high watermark lowered to the new end if it was above (and its file rewritten).
// Readers are held off while files change. offset at or past the end does nothing.
//
// Errors: ErrOffsetOutOfRange when offset is below the log start, ErrClosed, ErrStorage
// once the log failed, or an I/O failure (the log should then be closed and reopened, which
// recovers it).
func (l *Log) TruncateTo(offset int64) error {
	l.writer.Lock()
	defer l.writer.Unlock()
	l.files.Lock()
	defer l.files.Unlock()
	if err := l.truncateFilesLocked(offset); err != nil {
		return fmt.Errorf("partition %s: truncate to %d: %w", l.dir, offset, err)
	}
	return nil
}

// truncateFilesLocked does TruncateTo's work; l.writer and l.files are held.
func (l *Log) truncateFilesLocked(offset int64) error {
	l.mu.Lock()
	closed, start, end, segs, epochs := l.mu.closed, l.mu.start, l.mu.end, l.mu.segments, l.mu.epochs
	l.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case l.writer.failed != nil:
		return l.writer.failed
	case offset < start:
		return fmt.Errorf("%w: below log start %d", ErrOffsetOutOfRange, start)
	case offset >= end:
		return nil
	}
	// A compaction round working from the old tail must not publish it afterwards.
	if err := l.abortCompactionWriterLocked(offset); err != nil {
		return err
	}
	// Snapshots past the cut describe batches about to go: removed first, so that no crash
	// leaves one for batches written after the cut at the same offsets.
	if err := removeSnapshots(l.fs, l.dir, func(off int64) bool { return off > offset }); err != nil {
		return fmt.Errorf("remove producer snapshots past %d: %w", offset, err)
	}
	keep, err := l.dropSegmentsFrom(segs, offset)
	if err != nil {
		return err
	}
	newEnd := keep[len(keep)-1].w.next
	epochs, _ = epochs.truncateFromEnd(newEnd)
	l.mu.Lock()
	hw := min(l.highWatermarkLocked(), newEnd)
	l.mu.Unlock()
	producers, _, txns, err := replayHeaders(keep, -1, producerMap{}, txnState{}, hw, nil)
	err = errors.Join(err, writeEpochCheckpoint(l.fs, l.dir, epochs))
	l.writer.producers = producers
	txns.dropBelow(start)
	l.mu.Lock()
	l.mu.segments, l.mu.end, l.mu.epochs, l.mu.txns = keep, newEnd, epochs, txns
	l.lowerHighWatermarkLocked(newEnd)
	l.signalChangedLocked()
	l.mu.Unlock()
	last := keep[len(keep)-1]
	err = errors.Join(err, writeTxnIndex(l.fs, l.dir, last.base, abortedIn(txns.aborted, last.base, newEnd)))
	return errors.Join(err, l.checkpointHighWatermark(true))
}

// dropSegmentsFrom deletes the segments that start at or after offset and cuts the one that
// holds it, returning what is left (never empty: a fresh segment at offset if need be).
func (l *Log) dropSegmentsFrom(segs []*segment, offset int64) ([]*segment, error) {
	n := len(segs)
	for n > 0 && segs[n-1].base >= offset {
		n--
	}
	for _, s := range segs[n:] {
		if err := s.remove(l.dir); err != nil {
			return nil, err
		}
	}
	keep := segs[:n:n]
	if n == 0 {
		s, err := createSegment(l.fs, l.fileCache, l.dir, offset, l.config().IndexIntervalBytes)
		if err != nil {
			return nil, err
		}
		return []*segment{s}, nil
	}
	return keep, l.cutSegment(keep[n-1], offset)
}

// cutSegment truncates s before the batch holding offset, makes it the active segment and
// rebuilds its indexes the way Open does.
func (l *Log) cutSegment(s *segment, offset int64) error {
	size := s.size.Load()
	pos, err := s.seek(s.index, nil, offset, size)
	if err != nil {
		return err
	}
	l.mu.Lock()
	s.recent = nil // positions past the cut would be wrong; the tail fills it again
	l.mu.Unlock()
	if err := s.truncate(pos); err != nil {
		return err
	}
	s.size.Store(pos)
	_, err = l.recoverTail(s, nil)
	return err
}
