package partitionlog

import (
	"fmt"
	"sync"
)

// cleanerCheckpointName holds the offset up to which the partition was last cleaned: the
// first offset the next round counts as dirty. Kafka keeps one such file per log directory
// for all partitions; Strait keeps one per partition, next to leader-epoch-checkpoint.
//
//	0\n<offset>\n
//
// It only steers the dirty ratio and the key map's extent: a value too low costs work, and
// one too high (a truncation without the hook below) costs only missed compaction, since
// a tombstone gets its delete horizon only when its key was in the round's key map.
const cleanerCheckpointName = "cleaner-offset-checkpoint"

// readCleanerCheckpoint returns the checkpoint, or -1 when there is none; an error wraps
// ErrCorruptCheckpoint when it does not parse, and is an I/O failure otherwise.
func readCleanerCheckpoint(fs FS, dir string) (int64, error) {
	off, found, err := readOffsetFile(fs, dir, cleanerCheckpointName)
	if err != nil || !found {
		return -1, err
	}
	return off, nil
}

func writeCleanerCheckpoint(fs FS, dir string, offset int64) error {
	if err := writeFileAtomicFS(fs, dir, cleanerCheckpointName, fmt.Appendf(nil, "0\n%d\n", offset)); err != nil {
		return fmt.Errorf("write %s: %w", cleanerCheckpointName, err)
	}
	return nil
}

// cleaners tracks the rounds in progress, one per log at most, as Kafka's
// LogCleanerManager tracks its inProgress partitions. An entry lives only while Compact
// runs, so nothing accumulates.
var cleaners struct {
	sync.Mutex
	running map[*Log]*cleanerRun
}

// cleanerRun is one Compact in progress. aborted is guarded by cleaners' mutex.
type cleanerRun struct {
	l       *Log
	aborted bool
}

func startCleaner(l *Log) (*cleanerRun, error) {
	cleaners.Lock()
	defer cleaners.Unlock()
	if cleaners.running == nil {
		cleaners.running = map[*Log]*cleanerRun{}
	}
	if cleaners.running[l] != nil {
		return nil, ErrCompactionInProgress
	}
	r := &cleanerRun{l: l}
	cleaners.running[l] = r
	return r, nil
}

func (r *cleanerRun) finish() {
	cleaners.Lock()
	defer cleaners.Unlock()
	delete(cleaners.running, r.l)
}

func (r *cleanerRun) wasAborted() bool {
	cleaners.Lock()
	defer cleaners.Unlock()
	return r.aborted
}

// abortCompactionWriterLocked is the hook TruncateTo calls, with l.writer held, before it
// cuts anything (Kafka aborts and pauses cleaning the same way before truncating). A round
// in progress will not publish; the cleaner checkpoint drops to offset so the segments
// written after the truncation count as dirty.
//
// Without this hook a round that copied a sealed segment which TruncateTo then cut, and
// which was refilled and rolled before the round published, would publish stale copies.
func (l *Log) abortCompactionWriterLocked(offset int64) error {
	cleaners.Lock()
	if r := cleaners.running[l]; r != nil {
		r.aborted = true
	}
	cleaners.Unlock()
	if cp, err := readCleanerCheckpoint(l.fs, l.dir); err == nil && cp <= offset {
		return nil
	}
	return writeCleanerCheckpoint(l.fs, l.dir, offset)
}
