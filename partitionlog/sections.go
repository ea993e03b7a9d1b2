package partitionlog

import (
	"fmt"
	"os"
	"sort"
	"sync"
)

// Section is a byte range of a segment file, for zero-copy fetches: a caller writes it to a
// connection with io.Copy from an io.NewSectionReader(File, Offset, Length) (net.TCPConn's
// ReadFrom turns that into sendfile).
type Section struct {
	File           *os.File
	Offset, Length int64
}

// ReadSections is Read without copying: the same batches (the one holding offset first,
// whole even past maxBytes as KIP-74 wants, none at or past maxOffset, at most maxBytes
// otherwise), described as file sections in order instead of read into memory. meta has
// Records nil.
//
// The files stay open until release is called (once; later calls do nothing), even if
// retention, DeleteRecordsBefore, TruncateTo or Close removes their segments meanwhile.
// Bytes of a section never change, except that a TruncateTo cutting into the active
// segment shortens its file: a sender that then reads short must give up the connection,
// as Kafka does, since the response size is already on the wire.
//
// Errors: as Read, and ErrNoSections when the log's FS does not hand out *os.File (callers
// fall back to Read). On error release is a no-op, never nil.
func (l *Log) ReadSections(offset, maxOffset int64, maxBytes int32) (sections []Section, meta ReadResult, release func(), err error) {
	spans, meta, err := l.planRead(offset, maxOffset, int64(max(maxBytes, 0)))
	if err != nil {
		return nil, ReadResult{}, func() {}, fmt.Errorf("partition %s: read sections at %d: %w", l.dir, offset, err)
	}
	held := make([]*segment, 0, len(spans))
	for _, sp := range spans {
		file, err := sp.s.openFile() // the span's reference keeps it open until release
		if err != nil {
			releaseSpans(spans)
			return nil, ReadResult{}, func() {}, fmt.Errorf("partition %s: read sections at %d: %w", l.dir, offset, err)
		}
		f, ok := file.(*os.File)
		if !ok {
			releaseSpans(spans)
			return nil, ReadResult{}, func() {}, fmt.Errorf("partition %s: read sections at %d: %w", l.dir, offset, ErrNoSections)
		}
		sections = append(sections, Section{File: f, Offset: sp.pos, Length: sp.n})
		held = append(held, sp.s)
	}
	return sections, meta, sync.OnceFunc(func() { releaseAll(held) }), nil
}

// span is a run of whole batches in one segment: n bytes from pos.
type span struct {
	s      *segment
	pos, n int64
}

func releaseSpans(spans []span) {
	for _, sp := range spans {
		sp.s.release()
	}
}

// planRead finds the spans Read would copy, reading only batch headers, and returns them
// with their segments acquired; segments of the snapshot that contribute nothing are
// released at once.
func (l *Log) planRead(offset, maxOffset, maxBytes int64) ([]span, ReadResult, error) {
	l.files.RLock()
	defer l.files.RUnlock()
	v, err := l.snapshot(offset, maxBytes)
	if err != nil {
		return nil, ReadResult{}, err
	}
	meta := ReadResult{LogStartOffset: v.start, LogEndOffset: v.end, NextOffset: offset}
	maxOffset = min(maxOffset, v.end)
	var spans []span
	if offset < maxOffset {
		spans, meta.NextOffset, err = v.plan(offset, maxOffset, maxBytes)
		meta.NextOffset = max(meta.NextOffset, offset)
	}
	used := map[*segment]bool{}
	for _, sp := range spans {
		used[sp.s] = true
	}
	for _, s := range v.segs {
		if err != nil || !used[s] {
			s.release()
		}
	}
	if err != nil {
		return nil, ReadResult{}, err
	}
	return spans, meta, nil
}

// plan walks the view's segments as view.read does, collecting spans instead of bytes,
// and returns the offset after the last batch they hold.
func (v view) plan(offset, maxOffset, maxBytes int64) ([]span, int64, error) {
	var spans []span
	var taken, next int64
	for i, s := range v.segs {
		size := s.size.Load()
		var pos int64
		if i == 0 {
			var err error
			if pos, err = s.seek(v.index, v.recents[0], offset, size); err != nil {
				return nil, 0, err
			}
		}
		end, last, done, err := s.planBatches(v.indexes[i], v.recents[i], pos, size, maxOffset, maxBytes-taken, taken == 0)
		if err != nil {
			return nil, 0, err
		}
		if end > pos {
			spans = append(spans, span{s: s, pos: pos, n: end - pos})
			taken += end - pos
			next = last + 1
		}
		if done {
			break
		}
	}
	return spans, next, nil
}

// planBatches returns where the run of whole batches from pos ends: batches with base
// offsets below maxOffset, within budget bytes, except that when first the first batch is
// taken whole whatever its size (KIP-74). It jumps ahead by the sparse index (an entry marks
// a batch start) and reads headers only from there. done reports that a limit, not the
// segment end, stopped it; last is the last offset of the run's last batch (one less than
// the base of the batch after it, when the index jumped there).
func (s *segment) planBatches(index []indexEntry, recent []batchSpan, pos, size, maxOffset, budget int64, first bool) (end, last int64, done bool, err error) {
	end = pos
	i := sort.Search(len(index), func(i int) bool {
		return int64(index[i].position) > pos+budget || s.base+int64(index[i].relOffset) >= maxOffset
	})
	if i > 0 && int64(index[i-1].position) > pos {
		end = int64(index[i-1].position)
		last = s.base + int64(index[i-1].relOffset) - 1
	}
	for end < size {
		b, ok := spanAt(recent, end)
		if !ok {
			h, err := s.readHeader(end, size)
			if err != nil {
				return end, last, true, err
			}
			b = batchSpan{base: h.BaseOffset, last: h.lastOffset(), pos: end, end: end + h.size()}
		}
		if b.base >= maxOffset {
			return end, last, true, nil
		}
		if b.end-pos > budget {
			if first && end == pos {
				return b.end, b.last, true, nil
			}
			return end, last, true, nil
		}
		end, last = b.end, b.last
	}
	return end, last, false, nil
}
