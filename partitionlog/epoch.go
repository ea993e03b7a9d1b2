package partitionlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// epochCheckpointName is Kafka's file of (leader epoch, start offset) pairs.
const epochCheckpointName = "leader-epoch-checkpoint"

// epochEntry says that leader epoch epoch wrote its first record at startOffset.
type epochEntry struct {
	epoch       int32
	startOffset int64
}

// epochCache is the leader-epoch history, ascending in both fields. Methods that change it
// return a new slice, so a published cache is never modified in place.
type epochCache []epochEntry

func (c epochCache) latest() int32 {
	if len(c) == 0 {
		return -1
	}
	return c[len(c)-1].epoch
}

// startOf returns where epoch starts, if the history holds it.
func (c epochCache) startOf(epoch int32) (int64, bool) {
	i := sort.Search(len(c), func(i int) bool { return c[i].epoch >= epoch })
	if i == len(c) || c[i].epoch != epoch {
		return 0, false
	}
	return c[i].startOffset, true
}

// assign records that epoch starts at offset, if epoch is newer than all known.
func (c epochCache) assign(epoch int32, offset int64) (epochCache, bool) {
	if epoch < 0 || epoch <= c.latest() {
		return c, false
	}
	return append(slices.Clip(c), epochEntry{epoch, offset}), true
}

// truncateFromEnd drops epochs that start at or after offset, as Kafka does when the log is
// truncated to offset.
func (c epochCache) truncateFromEnd(offset int64) (epochCache, bool) {
	i := len(c)
	for i > 0 && c[i-1].startOffset >= offset {
		i--
	}
	return slices.Clip(c[:i]), i < len(c)
}

// truncateFromStart forgets history below offset, the new log start, as Kafka does when the
// start advances: the epoch in force at offset is kept, starting at offset.
func (c epochCache) truncateFromStart(offset int64) (epochCache, bool) {
	i := sort.Search(len(c), func(i int) bool { return c[i].startOffset > offset })
	if i == 0 || (i == 1 && c[0].startOffset == offset) {
		return c, false
	}
	return append(epochCache{{c[i-1].epoch, offset}}, c[i:]...), true
}

// endOffsetFor follows Kafka's LeaderEpochFileCache.endOffsetFor (KIP-101, KIP-279).
func (c epochCache) endOffsetFor(epoch int32, logEnd int64) (int32, int64) {
	switch {
	case epoch < 0 || len(c) == 0:
		return -1, -1
	case epoch == c.latest():
		return epoch, logEnd
	}
	// First entry with a larger epoch: its start ends the requested epoch.
	i := sort.Search(len(c), func(i int) bool { return c[i].epoch > epoch })
	switch {
	case i == len(c):
		// Newer than anything this log has seen: Kafka answers undefined.
		return -1, -1
	case i == 0:
		// Older than the first epoch: the follower keeps its epoch and truncates to where
		// our history starts.
		return epoch, c[0].startOffset
	default:
		return c[i-1].epoch, c[i].startOffset
	}
}

// encode renders Kafka's checkpoint text: version 0, the count, then "epoch offset" lines.
func (c epochCache) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(c))
	for _, e := range c {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.startOffset)
	}
	return b.Bytes()
}

// readEpochCheckpoint loads the checkpoint; found is false when the file does not exist,
// and an error wraps ErrCorruptCheckpoint when it does not parse (any other error: it
// cannot be read now).
func readEpochCheckpoint(fs FS, dir string) (c epochCache, found bool, err error) {
	path := filepath.Join(dir, epochCheckpointName)
	b, err := readFSFile(fs, path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	c, err = parseEpochCheckpoint(b)
	if err != nil {
		return nil, true, fmt.Errorf("%w %s: %w", ErrCorruptCheckpoint, path, err)
	}
	return c, true, nil
}

func parseEpochCheckpoint(b []byte) (epochCache, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	lines := []string{}
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != "0" {
		return nil, fmt.Errorf("%s: missing or unknown version", epochCheckpointName)
	}
	n, err := strconv.Atoi(strings.TrimSpace(lines[1]))
	if err != nil || n < 0 || n != len(lines)-2 {
		return nil, fmt.Errorf("%s: count %q does not match %d entries", epochCheckpointName, lines[1], len(lines)-2)
	}
	c := make(epochCache, 0, n)
	for i, line := range lines[2:] {
		e, err := parseEpochLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", epochCheckpointName, i+3, err)
		}
		if len(c) > 0 && (e.epoch <= c.latest() || e.startOffset < c[len(c)-1].startOffset) {
			return nil, fmt.Errorf("%s line %d: entries not ascending", epochCheckpointName, i+3)
		}
		c = append(c, e)
	}
	return c, nil
}

func parseEpochLine(line string) (epochEntry, error) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return epochEntry{}, fmt.Errorf("want 2 fields, got %q", line)
	}
	epoch, err1 := strconv.ParseInt(f[0], 10, 32)
	off, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return epochEntry{}, err
	}
	return epochEntry{int32(epoch), off}, nil
}

// writeEpochCheckpoint replaces the checkpoint atomically (writeFileAtomic).
func writeEpochCheckpoint(fs FS, dir string, c epochCache) error {
	if err := writeFileAtomicFS(fs, dir, epochCheckpointName, c.encode()); err != nil {
		return fmt.Errorf("write %s: %w", epochCheckpointName, err)
	}
	return nil
}
