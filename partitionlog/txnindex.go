package partitionlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The aborted-transaction index, in Kafka's .txnindex format: one file per segment that
// holds ABORT markers, an entry per aborted transaction whose marker lies in the segment,
// in marker order. Each entry is 34 bytes, big endian:
//
//	version int16 = 0 | producerId int64 | firstOffset int64 | lastOffset int64 |
//	lastStableOffset int64
//
// The log holds the entries in memory (txnState.aborted) and mirrors them to the files:
// a segment's file is written when it is sealed, the active segment's at Close, and all
// of them at Open and after compaction when they do not match what the log holds; a segment without aborted
// transactions has none, as in Kafka, where the file is created on the first entry.

const (
	txnIndexSuffix    = ".txnindex"
	txnIndexEntrySize = 34
	txnIndexVersion   = 0
)

func encodeTxnIndex(es []AbortedTxn) []byte {
	b := make([]byte, 0, len(es)*txnIndexEntrySize)
	be := binary.BigEndian
	for _, e := range es {
		b = be.AppendUint16(b, txnIndexVersion)
		b = be.AppendUint64(b, uint64(e.ProducerID))
		b = be.AppendUint64(b, uint64(e.FirstOffset))
		b = be.AppendUint64(b, uint64(e.LastOffset))
		b = be.AppendUint64(b, uint64(e.LastStableOffset))
	}
	return b
}

// decodeTxnIndex parses a .txnindex file: whole entries of version 0, each with
// firstOffset <= lastOffset, in ascending lastOffset.
func decodeTxnIndex(b []byte) ([]AbortedTxn, error) {
	if len(b)%txnIndexEntrySize != 0 {
		return nil, fmt.Errorf("%w: txn index size %d is not a multiple of %d", errCorruptIndex, len(b), txnIndexEntrySize)
	}
	be := binary.BigEndian
	es := make([]AbortedTxn, len(b)/txnIndexEntrySize)
	for i := range es {
		e := b[i*txnIndexEntrySize:]
		if v := be.Uint16(e); v != txnIndexVersion {
			return nil, fmt.Errorf("%w: txn index entry %d has version %d", errCorruptIndex, i, v)
		}
		es[i] = AbortedTxn{
			ProducerID:       int64(be.Uint64(e[2:])),
			FirstOffset:      int64(be.Uint64(e[10:])),
			LastOffset:       int64(be.Uint64(e[18:])),
			LastStableOffset: int64(be.Uint64(e[26:])),
		}
		if es[i].FirstOffset > es[i].LastOffset || i > 0 && es[i].LastOffset < es[i-1].LastOffset {
			return nil, fmt.Errorf("%w: txn index entry %d out of order", errCorruptIndex, i)
		}
	}
	return es, nil
}

// writeTxnIndex replaces segment base's .txnindex with es, or removes it when es is empty.
func writeTxnIndex(fs FS, dir string, base int64, es []AbortedTxn) error {
	path := segmentPath(dir, base, txnIndexSuffix)
	if len(es) == 0 {
		return removeIfExists(fs, path)
	}
	// Replaced atomically: a producer-state snapshot above the segment counts on its
	// entries (snapshot.go), so a crash must leave the old file or the new one.
	if err := writeFileAtomicFS(fs, dir, filepath.Base(path), encodeTxnIndex(es)); err != nil {
		return fmt.Errorf("write txn index of segment %d: %w", base, err)
	}
	return nil
}

// syncTxnIndexes makes the .txnindex files say what the log holds: each segment's entries
// written where the file is missing or of another size, and files of no segment removed.
// It reads the directory once; segs and aborted are a snapshot of the log.
func syncTxnIndexes(fs FS, dir string, segs []*segment, aborted []AbortedTxn) error {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return err
	}
	sizes := map[int64]int64{}
	var errs []error
	for _, n := range names {
		stem, ok := strings.CutSuffix(n, txnIndexSuffix)
		if !ok {
			continue
		}
		base, ok := parseSegmentName(stem + logSuffix)
		if !ok || !slices.ContainsFunc(segs, func(s *segment) bool { return s.base == base }) {
			errs = append(errs, removeIfExists(fs, filepath.Join(dir, n)))
			continue
		}
		size, err := fileSize(fs, filepath.Join(dir, n))
		if err != nil {
			return err
		}
		sizes[base] = size
	}
	for i, s := range segs {
		next := int64(1<<63 - 1)
		if i+1 < len(segs) {
			next = segs[i+1].base
		}
		es := abortedIn(aborted, s.base, next)
		if size, ok := sizes[s.base]; ok == (len(es) > 0) && size == int64(len(es))*txnIndexEntrySize {
			continue
		}
		errs = append(errs, writeTxnIndex(fs, dir, s.base, es))
	}
	return errors.Join(errs...)
}

func fileSize(fs FS, path string) (int64, error) {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// readTxnIndex loads segment base's .txnindex; a missing file is an empty index.
func readTxnIndex(fs FS, dir string, base int64) ([]AbortedTxn, error) {
	b, err := readFSFile(fs, segmentPath(dir, base, txnIndexSuffix))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeTxnIndex(b)
}
