package partitionlog

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// readSectionBytes copies what sections describe, as a sendfile would send it.
func readSectionBytes(t *testing.T, secs []Section) []byte {
	t.Helper()
	var out []byte
	for _, s := range secs {
		b, err := io.ReadAll(io.NewSectionReader(s.File, s.Offset, s.Length))
		if err != nil || int64(len(b)) != s.Length {
			t.Fatalf("section %+v: read %d bytes, %v", s, len(b), err)
		}
		out = append(out, b...)
	}
	return out
}

// TestReadSectionsMatchesRead holds the zero-copy path to Read, byte for byte, over offsets,
// bounds and budgets (KIP-74 first batch whole; stop before maxOffset), across segments.
func TestReadSectionsMatchesRead(t *testing.T) {
	l := openLog(t, t.TempDir(), smallCfg)
	stored := appendN(t, l, 40, 3)
	bs := int32(len(stored[0]))
	for offset := int64(0); offset <= 120; offset += 5 {
		for _, maxOffset := range []int64{offset, offset + 1, offset + 7, 120, 200} {
			for _, maxBytes := range []int32{0, 1, bs, bs + 1, 3*bs - 1, 10 * bs, 1 << 20} {
				want, err := l.Read(offset, maxOffset, maxBytes)
				if err != nil {
					t.Fatal(err)
				}
				secs, meta, release, err := l.ReadSections(offset, maxOffset, maxBytes)
				if err != nil {
					t.Fatal(err)
				}
				got := readSectionBytes(t, secs)
				release()
				if !bytes.Equal(got, want.Records) || meta.LogStartOffset != want.LogStartOffset || meta.LogEndOffset != want.LogEndOffset || meta.Records != nil {
					t.Fatalf("ReadSections(%d, %d, %d): %d bytes, Read %d", offset, maxOffset, maxBytes, len(got), len(want.Records))
				}
			}
		}
	}
	if _, _, release, err := l.ReadSections(121, 130, 100); !errors.Is(err, ErrOffsetOutOfRange) || release == nil {
		t.Fatalf("past the end: %v", err)
	}
}

// TestSectionOutlivesRetention: a fetch being sent keeps its file (Kafka reads a deleted
// segment through its open FileRecords), closed only at release.
func TestSectionOutlivesRetention(t *testing.T) {
	cfg := smallCfg
	cfg.RetentionBytes = 1
	l := openLog(t, t.TempDir(), cfg)
	appendN(t, l, 40, 3)
	secs, _, release, err := l.ReadSections(0, 120, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := l.Read(0, 120, 1<<20)
	if n, err := l.EnforceRetention(time.Now()); err != nil || n == 0 {
		t.Fatalf("retention deleted %d: %v", n, err)
	}
	if _, err := l.Read(0, 120, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("segment still readable by offset after retention: %v", err)
	}
	if !bytes.Equal(readSectionBytes(t, secs), want.Records) {
		t.Fatal("section bytes changed after its segment was deleted")
	}
	l.Close()
	if !bytes.Equal(readSectionBytes(t, secs[:1]), want.Records[:secs[0].Length]) {
		t.Fatal("section unreadable after Close before release")
	}
	release()
	release() // idempotent
	if _, err := secs[0].File.ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("file still open after the last release")
	}
}

func TestReadSectionsNeedsOSFiles(t *testing.T) {
	l := openWith(t, "/p", Config{FS: newMemFS()}, Hooks{})
	appendN(t, l, 3, 1)
	if _, _, release, err := l.ReadSections(0, 3, 100); !errors.Is(err, ErrNoSections) {
		t.Fatalf("memFS: %v, want ErrNoSections", err)
	} else {
		release()
	}
}
