package partitionlog

import "sort"

// The active segment keeps where its last batches start and end in memory, so that a
// read at the tail of the log, where consumers and followers read, finds its position
// without reading batch headers from the file: the sparse index has an entry every
// index.interval.bytes (4 KiB), and small batches put dozens between two entries, each a
// header to read (a system call) on every fetch.
//
// The list is published with the log's other read state under Log.mu and only ever
// appended to or replaced, never changed in place, so a reader's copy of the slice stays
// valid: an append writes past the reader's length, and trimming makes a new array.

// recentBatches bounds the batches a segment keeps: a few KiB per partition with writes.
const recentBatches = 128

// batchSpan is one batch: its first and last offsets and its bytes in the segment.
type batchSpan struct {
	base, last int64
	pos, end   int64
}

// appendRecent adds batches to cur, keeping at most 2*recentBatches and trimming to the
// last recentBatches in a new array when over.
func appendRecent(cur, add []batchSpan) []batchSpan {
	if len(add) == 0 {
		return cur
	}
	if len(cur)+len(add) <= 2*recentBatches {
		return append(cur, add...)
	}
	all := make([]batchSpan, 0, 2*recentBatches)
	all = append(all, cur...)
	all = append(all, add...)
	return append(make([]batchSpan, 0, 2*recentBatches), all[max(len(all)-recentBatches, 0):]...)
}

// recentFrom returns the batch holding offset, if the recent batches cover it.
func recentFrom(recent []batchSpan, offset int64) (batchSpan, bool) {
	n := len(recent)
	if n == 0 || offset < recent[0].base || offset > recent[n-1].last {
		return batchSpan{}, false
	}
	i := sort.Search(n, func(i int) bool { return recent[i].last >= offset })
	return recent[i], true
}

// spanAt returns the recent batch that starts at pos, if there is one.
func spanAt(recent []batchSpan, pos int64) (batchSpan, bool) {
	n := len(recent)
	if n == 0 || pos < recent[0].pos || pos > recent[n-1].pos {
		return batchSpan{}, false
	}
	i := sort.Search(n, func(i int) bool { return recent[i].pos >= pos })
	if recent[i].pos != pos {
		return batchSpan{}, false
	}
	return recent[i], true
}
