package node

import (
	"os"
	"strings"
)

// PartitionStats is one partition this node holds, as its metrics report it.
type PartitionStats struct {
	Topic     string
	Partition int32
	Leader    bool // this node leads it
	// Offsets: the log start, the high watermark (the leader's, as a follower last heard
	// it) and the log end of this replica.
	LogStartOffset, HighWatermark, LogEndOffset int64
	SizeBytes                                   int64 // of its segment files
	// ISR is the size of the in-sync replica set, where this node leads.
	ISR int
	// Followers are the leader's view of its followers' progress; nil on a follower.
	Followers []FollowerStats
}

// FollowerStats is how far one follower is behind its leader.
type FollowerStats struct {
	ID int32
	// Lag is the leader's log end less the follower's, in offsets; the leader's log end
	// while the follower has not fetched since this node became leader.
	Lag int64
}

// PartitionStats describes every open partition. It reads offsets under each
// partition's lock and sizes segment files on disk, so it is for a metrics scrape,
// not a request path.
func (s *Server) PartitionStats() []PartitionStats {
	open := s.openPartitions()
	out := make([]PartitionStats, 0, len(open))
	for key, r := range open {
		st := PartitionStats{
			Topic:          key.topic,
			Partition:      key.index,
			LogStartOffset: r.log.StartOffset(),
			HighWatermark:  r.highWatermark(),
			LogEndOffset:   r.log.EndOffset(),
			SizeBytes:      segmentBytes(s.dir(key)),
		}
		r.state.mu.Lock()
		if l := r.state.leader; l != nil {
			st.Leader, st.ISR = true, len(l.ISR())
			for _, f := range l.Followers() {
				st.Followers = append(st.Followers, FollowerStats{ID: f.ID, Lag: max(l.LogEnd()-max(f.End, 0), 0)})
			}
		}
		r.state.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// segmentBytes is the size of the segment files in a partition's directory, as Kafka's
// Size metric counts it (indexes left out). A file gone meanwhile counts nothing.
func segmentBytes(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}
