package partitionlog

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

// The file cache (filecache.go) bounds open segment files per process: tens of thousands of
// partitions must fit in the descriptors a process has ("Hardening": one CreateTopics of
// 20,000 partitions ran a node out of them).

// TestFileCacheBoundsOpenFiles: many logs sharing a cache of 4 keep at most 4 segment files
// open once idle (index files are never kept), and every log still reads and appends
// correctly through reopened files; Close leaves nothing open.
func TestFileCacheBoundsOpenFiles(t *testing.T) {
	fs, cache := newMemFS(), newFileCache(4)
	cfg := Config{SegmentBytes: 500, IndexIntervalBytes: 100, FS: fs, fileCache: cache}
	var logs []*Log
	var stored [][][]byte
	for i := range 20 {
		l := openWith(t, fmt.Sprintf("/p%d", i), cfg, Hooks{})
		logs = append(logs, l)
		stored = append(stored, appendN(t, l, 12, 2)) // three segments each
	}
	if n := fs.openFiles(); n > 4 {
		t.Fatalf("%d files open after writing 20 logs, cache limit 4", n)
	}
	for round := range 2 {
		for i, l := range logs {
			if got, want := readFrom(t, l, 0), bytes.Join(stored[i], nil); !bytes.Equal(got, want) {
				t.Fatalf("round %d, log %d: read differs after eviction", round, i)
			}
			b := makeBatch(t, batchSpec{records: 2, baseTs: 5000})
			mustAppend(t, l, b, 0) // stamps b's offsets in place, as stored
			stored[i] = append(stored[i], b)
		}
	}
	if n, c := fs.openFiles(), cache.openFiles(); n > 4 || c > 4 {
		t.Fatalf("%d files open (%d in the cache), limit 4", n, c)
	}
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := fs.openFiles(); n != 0 {
		t.Fatalf("%d files open after closing every log", n)
	}
}

// TestFileCacheIdleLogHoldsNothing: a log nobody uses gives its descriptor up when others
// need the slot, and takes it back on its next append or read.
func TestFileCacheIdleLogHoldsNothing(t *testing.T) {
	fs, cache := newMemFS(), newFileCache(1)
	cfg := Config{FS: fs, fileCache: cache}
	idle := openWith(t, "/idle", cfg, Hooks{})
	mustAppend(t, idle, makeBatch(t, batchSpec{}), 0)
	busy := openWith(t, "/busy", cfg, Hooks{})
	for range 3 {
		mustAppend(t, busy, makeBatch(t, batchSpec{}), 0)
	}
	if n := fs.openFiles(); n != 1 {
		t.Fatalf("%d files open, want the busy log's only", n)
	}
	mustAppend(t, idle, makeBatch(t, batchSpec{}), 0)
	if got := len(readAll(t, idle)); got != 2 {
		t.Fatalf("idle log reads %d batches after reopening, want 2", got)
	}
}

// TestFileCacheKeepsSectionsOpen: zero-copy sections stay readable while their files would
// be evicted, and while retention deletes their segment (sendfile from a file being sent
// must not fail).
func TestFileCacheKeepsSectionsOpen(t *testing.T) {
	cache := newFileCache(1)
	cfg := smallCfg
	cfg.fileCache, cfg.RetentionBytes = cache, 1
	l := openLog(t, t.TempDir(), cfg)
	other := openLog(t, t.TempDir(), Config{fileCache: cache})
	appendN(t, l, 40, 3)
	want, _ := l.Read(0, 120, 1<<20)
	secs, _, release, err := l.ReadSections(0, 120, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for range 5 {
		mustAppend(t, other, makeBatch(t, batchSpec{}), 0) // wants the cache's one slot
	}
	if n, err := l.EnforceRetention(time.Now()); err != nil || n == 0 {
		t.Fatalf("retention deleted %d: %v", n, err)
	}
	if !bytes.Equal(readSectionBytes(t, secs), want.Records) {
		t.Fatal("sections changed under eviction and retention")
	}
}

// TestFileCacheRetentionOfEvictedSegment: a reader that took a segment whose file the cache
// had closed still reads it after retention renamed and removed it: retention reopens the
// file before renaming it.
func TestFileCacheRetentionOfEvictedSegment(t *testing.T) {
	fs, cache := newMemFS(), newFileCache(1)
	cfg := Config{SegmentBytes: 500, IndexIntervalBytes: 100, RetentionBytes: 1, FS: fs, fileCache: cache}
	l := openWith(t, "/p", cfg, Hooks{})
	stored := appendN(t, l, 12, 2)
	v, err := l.snapshot(0, 1<<20) // a reader's snapshot, taken before retention
	if err != nil {
		t.Fatal(err)
	}
	defer releaseAll(v.segs)
	if _, err := l.EnforceRetention(time.Now()); err != nil {
		t.Fatal(err)
	}
	if fs.exists(segmentPath("/p", 0, logSuffix)) {
		t.Fatal("retention kept segment 0")
	}
	got, err := v.read(0, 24, 1<<20)
	if err != nil || !bytes.Equal(got, bytes.Join(stored, nil)) {
		t.Fatalf("reader's snapshot after retention: %d bytes, %v", len(got), err)
	}
}

// TestFileCacheConcurrent hammers a cache of 2 with appends, reads, zero-copy-sized plans,
// retention and compaction on several logs at once (run with -race): no read may see a
// closed file or wrong bytes.
func TestFileCacheConcurrent(t *testing.T) {
	fs, cache := newMemFS(), newFileCache(2)
	cfg := Config{SegmentBytes: 400, IndexIntervalBytes: 100, RetentionBytes: 2000, FS: fs, fileCache: cache}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 4 {
		l := openWith(t, fmt.Sprintf("/p%d", i), cfg, Hooks{})
		stop := make(chan struct{})
		wg.Add(2)
		go func() { // writer, retention and compaction
			defer wg.Done()
			defer close(stop)
			for j := range 150 {
				b := makeKeyedBatch(t, keyedSpec{recs: []kv{{key: fmt.Sprint(j % 7), value: "v"}}, baseTs: int64(1000 + j)})
				if _, err := l.Append(b, 0, AppendOptions{}); err != nil {
					errs <- err
					return
				}
				if j%20 == 0 {
					if _, err := l.EnforceRetention(time.Now()); err != nil {
						errs <- err
					}
					if _, err := l.Compact(time.Now(), CompactConfig{MinCleanableDirtyRatio: 0.01}); err != nil {
						errs <- err
					}
				}
			}
		}()
		go func() { // reader: every batch read must be whole and valid
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := l.Read(l.StartOffset(), l.EndOffset(), 1<<20)
				if err != nil {
					continue // the start moved under us: OFFSET_OUT_OF_RANGE is fine
				}
				for b := res.Records; len(b) > 0; {
					h, err := decodeBatch(b)
					if err != nil {
						errs <- fmt.Errorf("read a bad batch: %w", err)
						return
					}
					b = b[h.size():]
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
