package partitionlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Producer-state snapshots, in the layout of Kafka's ProducerStateManager (KIP-98): a file
// <offset>.snapshot holds the state of every producer once the log held exactly the
// offsets below <offset>, so Open loads it and replays batch headers from there instead of
// reading every header of the log. Big endian:
//
//	version int16 = 1 | crc uint32 (CRC-32C of what follows) | count int32 |
//	count × entry:
//	  producerId int64 | epoch int16 | lastSequence int32 | lastOffset int64 |
//	  offsetDelta int32 | timestamp int64 | coordinatorEpoch int32 |
//	  currentTxnFirstOffset int64 (-1: no transaction open)
//
// Kafka writes one entry per producer, for its last batch. Strait writes one per batch it
// retains (up to five, oldest first), so that duplicate detection after a restart covers
// the same batches as before it; a producer with no batch at its epoch gets one entry with
// lastSequence and lastOffset -1. A reader that keeps the last entry of each producer id,
// as Kafka's does, reads the same state Kafka would have written.
//
// When: at each segment roll (offset = the new segment's base), at Close (the log end),
// and after a compaction round (the log end). Written to a temporary file, fsynced, renamed
// into place and the directory fsynced, so a crash leaves the old file or the new one,
// never a torn one; a file that fails its CRC or does not parse is ignored (and removed).
//
// Which one Open uses (loadSnapshot): the latest at or below both the recovered log end and
// the high watermark, and at or above the first segment's base. Below the end: a crash may
// have cut the tail a later snapshot describes. Below the high watermark: a transaction
// completed at or past the high watermark still holds the LSO (txn.go), and only a replay
// of its marker tells so. The aborted transactions below the snapshot come from the
// .txnindex files, which are written before any snapshot above them (at the roll, at
// Close, after compaction) and replaced atomically. Without a usable snapshot, or with an
// epoch checkpoint or .txnindex file that is missing its data, Open reads every header.

const (
	snapshotSuffix     = ".snapshot"
	snapshotVersion    = 1
	snapshotHeaderSize = 2 + 4 + 4
	snapshotEntrySize  = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8
	// snapshotsKept bounds the snapshots in a directory: the newest, and older ones in
	// case the newest is above the high watermark at the next Open.
	snapshotsKept = 3
)

// errCorruptSnapshot marks a snapshot whose contents do not parse or fail their CRC.
var errCorruptSnapshot = errors.New("corrupt producer snapshot")

// encodeSnapshot serializes producers, by ascending producer id.
func encodeSnapshot(producers producerMap) []byte {
	pids := make([]int64, 0, len(producers))
	n := 0
	for pid, e := range producers {
		pids = append(pids, pid)
		n += max(len(e.batches), 1)
	}
	slices.Sort(pids)
	be := binary.BigEndian
	b := make([]byte, snapshotHeaderSize, snapshotHeaderSize+n*snapshotEntrySize)
	be.PutUint16(b, snapshotVersion)
	be.PutUint32(b[6:], uint32(n))
	for _, pid := range pids {
		e := producers[pid]
		txnFirst := int64(-1)
		if e.txnOngoing {
			txnFirst = e.txnFirst
		}
		entry := func(lastSeq int32, lastOffset int64, delta int32) {
			b = be.AppendUint64(b, uint64(pid))
			b = be.AppendUint16(b, uint16(e.epoch))
			b = be.AppendUint32(b, uint32(lastSeq))
			b = be.AppendUint64(b, uint64(lastOffset))
			b = be.AppendUint32(b, uint32(delta))
			b = be.AppendUint64(b, uint64(e.lastTimestamp))
			b = be.AppendUint32(b, uint32(e.coordinatorEpoch))
			b = be.AppendUint64(b, uint64(txnFirst))
		}
		if len(e.batches) == 0 {
			entry(-1, -1, 0)
		}
		for _, m := range e.batches {
			entry(m.lastSeq, m.lastOffset, int32(m.lastOffset-m.baseOffset))
		}
	}
	be.PutUint32(b[2:], crc32.Checksum(b[6:], castagnoli))
	return b
}

// decodeSnapshot parses a snapshot, checking its version, CRC and every entry. Entries of
// one producer must be consecutive, their batches ascending.
func decodeSnapshot(b []byte) (producerMap, error) {
	be := binary.BigEndian
	if len(b) < snapshotHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, header needs %d", errCorruptSnapshot, len(b), snapshotHeaderSize)
	}
	if v := int16(be.Uint16(b)); v != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errCorruptSnapshot, v, snapshotVersion)
	}
	if crc := crc32.Checksum(b[6:], castagnoli); crc != be.Uint32(b[2:]) {
		return nil, fmt.Errorf("%w: CRC-32C %08x, file says %08x", errCorruptSnapshot, crc, be.Uint32(b[2:]))
	}
	n := int64(int32(be.Uint32(b[6:])))
	if n < 0 || int64(len(b)-snapshotHeaderSize) != n*snapshotEntrySize {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", errCorruptSnapshot, n, len(b))
	}
	out := producerMap{}
	last := int64(math.MinInt64)
	for i := range int(n) {
		r := b[snapshotHeaderSize+i*snapshotEntrySize:]
		pid := int64(be.Uint64(r))
		epoch := int16(be.Uint16(r[8:]))
		lastSeq := int32(be.Uint32(r[10:]))
		lastOffset := int64(be.Uint64(r[14:]))
		delta := int32(be.Uint32(r[22:]))
		txnFirst := int64(be.Uint64(r[38:]))
		switch {
		case pid < 0 || pid < last:
			return nil, fmt.Errorf("%w: entry %d: producer id %d after %d", errCorruptSnapshot, i, pid, last)
		case lastSeq < -1 || delta < 0 || lastSeq >= 0 && lastOffset < int64(delta) || txnFirst < -1:
			return nil, fmt.Errorf("%w: entry %d of producer %d is out of range", errCorruptSnapshot, i, pid)
		}
		e, seen := out[pid]
		if !seen {
			e = newEntry(epoch)
		}
		e.epoch = epoch
		e.lastTimestamp = int64(be.Uint64(r[26:]))
		e.coordinatorEpoch = int32(be.Uint32(r[34:]))
		e.txnOngoing, e.txnFirst = txnFirst >= 0, max(txnFirst, 0)
		if lastSeq >= 0 {
			if k := len(e.batches); k > 0 && e.batches[k-1].lastOffset >= lastOffset-int64(delta) {
				return nil, fmt.Errorf("%w: entry %d: batches of producer %d out of order", errCorruptSnapshot, i, pid)
			}
			first := int64(lastSeq) - int64(delta)
			if first < 0 {
				first += math.MaxInt32 + 1 // sequences wrap to 0 after MaxInt32
			}
			e.batches = append(e.batches, batchMeta{firstSeq: int32(first), lastSeq: lastSeq, baseOffset: lastOffset - int64(delta), lastOffset: lastOffset})
			if len(e.batches) > batchesToRetain {
				e.batches = e.batches[1:]
			}
		}
		out[pid], last = e, pid
	}
	return out, nil
}

// listSnapshots returns the offsets of the directory's snapshot files, ascending.
func listSnapshots(fs FS, dir string) ([]int64, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, name := range names {
		digits, ok := strings.CutSuffix(name, snapshotSuffix)
		if !ok || len(digits) != 20 {
			continue
		}
		if off, err := strconv.ParseInt(digits, 10, 64); err == nil && off >= 0 {
			out = append(out, off)
		}
	}
	slices.Sort(out)
	return out, nil
}

// removeSnapshots removes the snapshots whose offsets drop says so, then syncs the directory.
func removeSnapshots(fs FS, dir string, drop func(offset int64) bool) error {
	offs, err := listSnapshots(fs, dir)
	if err != nil {
		return err
	}
	removed := false
	for _, off := range offs {
		if drop(off) {
			if err := removeIfExists(fs, segmentPath(dir, off, snapshotSuffix)); err != nil {
				return err
			}
			removed = true
		}
	}
	if removed {
		return fs.SyncDir(dir)
	}
	return nil
}

// writeSnapshotWriterLocked writes the producer state as of offset (the log holds exactly
// the offsets below it) and removes snapshots no Open would use: below the first
// segment, and all but the newest snapshotsKept. Every .txnindex file of the segments
// below offset must be current. A failure is logged, not returned: without the file the
// next Open reads more headers, nothing else. l.writer is held.
func (l *Log) writeSnapshotWriterLocked(offset int64) {
	if l.writer.failed != nil {
		return
	}
	name := segmentPath("", offset, snapshotSuffix)
	err := writeFileAtomicFS(l.fs, l.dir, name, encodeSnapshot(l.writer.producers))
	if err == nil {
		l.mu.Lock()
		first := l.mu.segments[0].base
		l.mu.Unlock()
		var offs []int64
		if offs, err = listSnapshots(l.fs, l.dir); err == nil {
			keepFrom := offs[max(len(offs)-snapshotsKept, 0)]
			err = removeSnapshots(l.fs, l.dir, func(off int64) bool { return off < first || off < keepFrom })
		}
	}
	if err != nil {
		l.logger.Warn("writing a producer-state snapshot failed: the next open reads more of the log to rebuild producer state; check the disk",
			"offset", offset, "err", err)
	}
}

// loadSnapshot rebuilds producer state and transactions from the newest usable snapshot
// (see the top of this file) and the batches after it. ok is false when there is none, or
// when what it needs is missing or corrupt: the caller then reads every header. Snapshots
// past the log end are removed: they describe records a crash or truncation took back.
func (l *Log) loadSnapshot(segs []*segment, end, hw int64, progress *recoverProgress) (producerMap, txnState, bool) {
	offs, err := listSnapshots(l.fs, l.dir)
	if err != nil {
		l.logger.Warn("cannot list producer-state snapshots: reading the whole log instead", "err", err)
		return nil, txnState{}, false
	}
	if err := removeSnapshots(l.fs, l.dir, func(off int64) bool { return off > end }); err != nil {
		l.logger.Warn("cannot remove producer-state snapshots past the log end: reading the whole log instead", "end", end, "err", err)
		return nil, txnState{}, false
	}
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		if off > min(end, hw) || off < segs[0].base {
			continue
		}
		path := segmentPath(l.dir, off, snapshotSuffix)
		b, err := readFSFile(l.fs, path)
		var producers producerMap
		if err == nil {
			producers, err = decodeSnapshot(b)
		}
		if errors.Is(err, errCorruptSnapshot) {
			l.logger.Warn("removing a corrupt producer-state snapshot; an older one or the log is used instead", "file", path, "err", err)
			if err := removeIfExists(l.fs, path); err != nil {
				return nil, txnState{}, false
			}
			continue
		}
		if err != nil {
			l.logger.Warn("cannot read a producer-state snapshot: reading the whole log instead", "file", path, "err", err)
			return nil, txnState{}, false
		}
		txns, err := abortedBelow(l.fs, l.dir, segs, off)
		if err != nil {
			l.logger.Warn("cannot load the aborted-transaction indexes below a snapshot: reading the whole log instead", "snapshot", off, "err", err)
			return nil, txnState{}, false
		}
		for pid, e := range producers {
			if e.txnOngoing {
				if txns.ongoing == nil {
					txns.ongoing = map[int64]int64{}
				}
				txns.ongoing[pid] = e.txnFirst
			}
		}
		producers, _, txns, err = replayHeaders(segs, off, producers, txns, hw, progress)
		if err != nil {
			l.logger.Warn("cannot replay the log after a producer-state snapshot: reading the whole log instead", "snapshot", off, "err", err)
			return nil, txnState{}, false
		}
		l.logger.Debug("producer state loaded from a snapshot", "snapshot", off, "producers", len(producers))
		return producers, txns, true
	}
	return nil, txnState{}, false
}

// abortedBelow loads the aborted transactions whose markers lie below offset from the
// .txnindex files of the segments holding offsets below it.
func abortedBelow(fs FS, dir string, segs []*segment, offset int64) (txnState, error) {
	var t txnState
	for _, s := range segs {
		if s.base >= offset {
			break
		}
		es, err := readTxnIndex(fs, dir, s.base)
		if err != nil {
			return txnState{}, fmt.Errorf("segment %d: %w", s.base, err)
		}
		for _, e := range es {
			if e.LastOffset < offset {
				t.aborted = append(t.aborted, e)
			}
		}
	}
	if !slices.IsSortedFunc(t.aborted, func(a, b AbortedTxn) int { return int(min(max(a.LastOffset-b.LastOffset, -1), 1)) }) {
		return txnState{}, fmt.Errorf("%w: aborted transactions out of order across segments", errCorruptIndex)
	}
	return t, nil
}
