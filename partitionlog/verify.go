package partitionlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// Verify checks a partition directory for an operator who suspects a disk, reading every
// byte, without opening the log or changing anything. Open repairs what a crash leaves (a
// torn tail, an index) silently; Verify reports everything, including what Open would
// repair, so that damage to sealed segments, which Open does not re-read, is seen:
//
//   - every batch: length, magic, CRC-32C, and its records as Append would read them
//     (framing, decompression, counts; validate.go's rules for a stored batch, which
//     compaction may have thinned);
//   - offsets: increasing from batch to batch and segment to segment, each segment starting
//     at its file's base offset, and dense unless the partition is compacted (compaction
//     removes whole batches, leaving gaps);
//   - .index entries pointing at the start of the batch holding their offset, .timeindex
//     entries naming a batch that has their timestamp, increasing, and a sealed segment's
//     last time entry holding its largest timestamp (retention goes by it);
//   - the checkpoint files parse.
//
// It is meant for a stopped node, or a partition not being written: a concurrent append
// may look like a torn last batch. Problems name the file and the byte position. The
// error is for a directory that cannot be read at all; a file that cannot be read is a
// problem, and the others are still checked.
func Verify(dir string, opts VerifyOptions) (VerifyResult, error) {
	opts = opts.withDefaults()
	res := VerifyResult{Dir: dir, StartOffset: -1, EndOffset: -1}
	names, err := opts.FS.ReadDir(dir)
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", dir, err)
	}
	v := &verifier{opts: opts, dir: dir, res: &res, last: opts.Now()}
	v.res.Compacted = opts.Compacted || slices.Contains(names, cleanerCheckpointName)
	var bases []int64
	for _, name := range names {
		if base, ok := parseSegmentName(name); ok {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	v.sizeAll(bases)
	for i, base := range bases {
		v.segment(base, i == len(bases)-1)
	}
	v.checkpoints(names)
	v.report(true)
	return res, nil
}

// VerifyOptions tunes Verify. Zero fields take defaults.
type VerifyOptions struct {
	// FS is where the files are; nil is the operating system's.
	FS FS
	// Compacted allows gaps between batches' offsets, as compaction leaves them. Verify
	// also assumes it when the directory has a cleaner-offset-checkpoint.
	Compacted bool
	// Progress, when set, hears how far Verify got: at most every ProgressEvery, and once
	// at the end.
	Progress func(VerifyProgress)
	// ProgressEvery defaults to a second.
	ProgressEvery time.Duration
	// Now is the clock for progress; nil is time.Now.
	Now func() time.Time
}

func (o VerifyOptions) withDefaults() VerifyOptions {
	if o.FS == nil {
		o.FS = osFS{}
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// VerifyProgress is where Verify is: in File, having read BytesChecked of the BytesTotal
// bytes of .log files.
type VerifyProgress struct {
	File                     string
	BytesChecked, BytesTotal int64
	Done                     bool // the last call
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Dir                    string
	Segments               int
	Batches, Records       int64
	Bytes                  int64 // of .log files
	StartOffset, EndOffset int64 // the first batch's base offset and the offset after the last, -1 when none
	Compacted              bool  // gaps between offsets were allowed
	Problems               []Problem
}

// OK reports whether nothing was wrong.
func (r VerifyResult) OK() bool { return len(r.Problems) == 0 }

// Problem is one thing Verify found wrong.
type Problem struct {
	File     string // the path
	Position int64  // byte position in File, -1 when the problem is not at one place
	Message  string
}

func (p Problem) String() string {
	if p.Position < 0 {
		return fmt.Sprintf("%s: %s", p.File, p.Message)
	}
	return fmt.Sprintf("%s at byte %d: %s", p.File, p.Position, p.Message)
}

// verifier is one Verify run.
type verifier struct {
	opts    VerifyOptions
	dir     string
	res     *VerifyResult
	sizes   map[int64]int64
	checked int64
	total   int64
	file    string
	last    time.Time // of the last progress report
	prev    int64     // last offset of the previous batch, -1 before the first
	started bool
}

// verifiedBatch is what the index checks need of a batch.
type verifiedBatch struct {
	pos, base, last, maxTs int64
}

func (v *verifier) problem(file string, pos int64, format string, args ...any) {
	v.res.Problems = append(v.res.Problems, Problem{File: file, Position: pos, Message: fmt.Sprintf(format, args...)})
}

// sizeAll learns the .log sizes up front, for progress.
func (v *verifier) sizeAll(bases []int64) {
	v.sizes = map[int64]int64{}
	for _, base := range bases {
		path := segmentPath(v.dir, base, logSuffix)
		f, err := v.opts.FS.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			continue // segment reports it
		}
		if fi, err := f.Stat(); err == nil {
			v.sizes[base] = fi.Size()
			v.total += fi.Size()
		}
		f.Close()
	}
}

// segment checks one .log and its indexes.
func (v *verifier) segment(base int64, last bool) {
	path := segmentPath(v.dir, base, logSuffix)
	v.file = path
	v.res.Segments++
	f, err := v.opts.FS.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		v.problem(path, -1, "cannot open: %v", err)
		return
	}
	defer f.Close()
	size := v.sizes[base]
	v.res.Bytes += size
	batches := v.batches(f, base, size, path)
	v.offsets(base, batches, path)
	v.index(base, size, batches, last)
	v.timeIndex(base, batches, last)
}

// batches reads the segment's batches in order, checking each, until the end or the first
// that cannot be framed (nothing after it can be found).
func (v *verifier) batches(f File, base, size int64, path string) []verifiedBatch {
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 1<<20)
	var buf []byte
	var out []verifiedBatch
	for pos := int64(0); pos < size; {
		h, err := readVerified(br, &buf, size-pos)
		if err != nil {
			what := "corrupt batch"
			if !isCorruption(err) {
				what = "read failed"
			}
			v.problem(path, pos, "%s: %v; the %d bytes from here were not checked", what, err, size-pos)
			v.checked += size - pos
			return out
		}
		if _, err := scanRecords(buf, h, recordRules{}, 0); err != nil {
			v.problem(path, pos, "batch at offset %d: %v", h.BaseOffset, err)
		}
		out = append(out, verifiedBatch{pos: pos, base: h.BaseOffset, last: h.lastOffset(), maxTs: h.MaxTimestamp})
		v.res.Batches++
		v.res.Records += int64(max(h.RecordsCount, 0))
		pos += h.size()
		v.checked += h.size()
		v.report(false)
	}
	return out
}

// offsets checks the batches' offsets against the segment's base and the batches before.
func (v *verifier) offsets(base int64, batches []verifiedBatch, path string) {
	if len(batches) > 0 && (batches[0].base < base || !v.res.Compacted && batches[0].base != base) {
		v.problem(path, 0, "first batch starts at offset %d, the file's name says %d", batches[0].base, base)
	}
	for _, b := range batches {
		switch {
		case !v.started:
			v.res.StartOffset = b.base
		case b.base <= v.prev:
			v.problem(path, b.pos, "batch at offset %d does not follow offset %d: offsets must increase", b.base, v.prev)
		case !v.res.Compacted && b.base != v.prev+1:
			v.problem(path, b.pos, "batch at offset %d after offset %d: offsets %d to %d are missing", b.base, v.prev, v.prev+1, b.base-1)
		}
		v.started, v.prev = true, b.last
		v.res.EndOffset = b.last + 1
	}
}

// index checks .index entries: each at a batch start whose base offset it names. The last
// segment's index may be missing or lag (Open rebuilds it), but what it holds must be true.
func (v *verifier) index(base, size int64, batches []verifiedBatch, last bool) {
	path := segmentPath(v.dir, base, indexSuffix)
	b, ok := v.readIndexFile(path, last, size > 0)
	if !ok {
		return
	}
	if len(b)%indexEntrySize != 0 {
		v.problem(path, -1, "size %d is not a multiple of %d", len(b), indexEntrySize)
	}
	var prev indexEntry
	for i := 0; i+indexEntrySize <= len(b); i += indexEntrySize {
		e := indexEntry{relOffset: binary.BigEndian.Uint32(b[i:]), position: binary.BigEndian.Uint32(b[i+4:])}
		j := sort.Search(len(batches), func(j int) bool { return batches[j].pos >= int64(e.position) })
		switch {
		case i > 0 && (e.relOffset <= prev.relOffset || e.position <= prev.position):
			v.problem(path, int64(i), "entry (offset %d, position %d) does not increase", base+int64(e.relOffset), e.position)
		case j == len(batches) || batches[j].pos != int64(e.position):
			v.problem(path, int64(i), "entry for offset %d points at position %d, where no batch starts", base+int64(e.relOffset), e.position)
		case batches[j].base != base+int64(e.relOffset):
			v.problem(path, int64(i), "entry says offset %d at position %d, the batch there starts at %d", base+int64(e.relOffset), e.position, batches[j].base)
		}
		prev = e
	}
}

// timeIndex checks .timeindex entries: increasing, each naming the last offset of a batch
// with its timestamp; a sealed segment's last holding the segment's largest timestamp.
func (v *verifier) timeIndex(base int64, batches []verifiedBatch, last bool) {
	path := segmentPath(v.dir, base, timeIndexSuffix)
	b, ok := v.readIndexFile(path, last, len(batches) > 0)
	if !ok {
		return
	}
	if len(b)%timeEntrySize != 0 {
		v.problem(path, -1, "size %d is not a multiple of %d", len(b), timeEntrySize)
	}
	var prev timeEntry
	for i := 0; i+timeEntrySize <= len(b); i += timeEntrySize {
		e := timeEntry{timestamp: int64(binary.BigEndian.Uint64(b[i:])), relOffset: binary.BigEndian.Uint32(b[i+8:])}
		off := base + int64(e.relOffset)
		j := sort.Search(len(batches), func(j int) bool { return batches[j].last >= off })
		switch {
		case i > 0 && (e.timestamp <= prev.timestamp || e.relOffset < prev.relOffset):
			v.problem(path, int64(i), "entry (timestamp %d, offset %d) does not increase", e.timestamp, off)
		case j == len(batches) || batches[j].last != off:
			v.problem(path, int64(i), "entry names offset %d, which ends no batch", off)
		case batches[j].maxTs != e.timestamp:
			v.problem(path, int64(i), "entry says timestamp %d for the batch ending at offset %d, which has %d", e.timestamp, off, batches[j].maxTs)
		}
		prev = e
	}
	largest := int64(-1)
	for _, bt := range batches {
		largest = max(largest, bt.maxTs)
	}
	if !last && largest >= 0 && (len(b) < timeEntrySize || prev.timestamp != largest) {
		v.problem(path, -1, "the last entry's timestamp is %d, the segment's largest is %d: retention by time would misjudge the segment", prev.timestamp, largest)
	}
}

// readIndexFile reads an index file. Missing is a problem only for a sealed segment with
// data: Open would rebuild it, but a sealed segment's indexes should be there.
func (v *verifier) readIndexFile(path string, last, hasData bool) ([]byte, bool) {
	b, err := readFSFile(v.opts.FS, path)
	switch {
	case errors.Is(err, os.ErrNotExist) && (last || !hasData):
		return nil, false
	case errors.Is(err, os.ErrNotExist):
		v.problem(path, -1, "missing: the segment is sealed (Open rebuilds it)")
		return nil, false
	case err != nil:
		v.problem(path, -1, "cannot read: %v", err)
		return nil, false
	}
	return b, true
}

// checkpoints checks that the checkpoint files present parse, and that the log-start and
// high-watermark offsets fit the log.
func (v *verifier) checkpoints(names []string) {
	for _, name := range []string{startOffsetCheckpointName, highWatermarkName, cleanerCheckpointName} {
		if !slices.Contains(names, name) {
			continue
		}
		off, _, err := readOffsetFile(v.opts.FS, v.dir, name)
		path := filepath.Join(v.dir, name)
		switch {
		case err != nil:
			v.problem(path, -1, "%v", err)
		case name == highWatermarkName && v.res.EndOffset >= 0 && off > v.res.EndOffset:
			v.problem(path, -1, "high watermark %d past the log end %d: committed records are missing here (lost unflushed in a crash? a follower refetches them; a sole replica has lost them)", off, v.res.EndOffset)
		}
	}
	if slices.Contains(names, epochCheckpointName) {
		if _, _, err := readEpochCheckpoint(v.opts.FS, v.dir); err != nil {
			v.problem(filepath.Join(v.dir, epochCheckpointName), -1, "%v", err)
		}
	}
}

// report calls Progress when it is time, or at the end.
func (v *verifier) report(done bool) {
	if v.opts.Progress == nil {
		return
	}
	now := v.opts.Now()
	if !done && now.Sub(v.last) < v.opts.ProgressEvery {
		return
	}
	v.last = now
	v.opts.Progress(VerifyProgress{File: v.file, BytesChecked: v.checked, BytesTotal: v.total, Done: done})
}

// IsPartitionDir reports whether dir holds segment files, for tools that walk a data
// directory looking for partitions.
func IsPartitionDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if _, ok := parseSegmentName(e.Name()); ok && !e.IsDir() {
			return true
		}
	}
	return false
}
