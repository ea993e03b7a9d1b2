package node

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Special ListOffsets timestamps (Kafka's ListOffsetsRequest).
const (
	latestTimestamp   = -1
	earliestTimestamp = -2
)

// readCommitted is isolation level 1: read below the last stable offset (KIP-98).
const readCommitted = 1

// listOffsets answers the earliest, the latest, or the first offset at or after a
// timestamp for each partition.
func (s *Server) listOffsets(req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	snap := s.view.Snapshot()
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			r, p, err := s.lookup(snap, rt.Topic, rp.Partition)
			if err == nil {
				err = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch)
			}
			if err == nil {
				sp.LeaderEpoch = p.LeaderEpoch
				switch rp.Timestamp {
				case latestTimestamp:
					sp.Offset = r.highWatermark() // consumers see committed records only
					if req.IsolationLevel == readCommitted {
						sp.Offset = r.lastStableOffset()
					}
				case earliestTimestamp:
					sp.Offset = r.log.StartOffset()
				default:
					sp.Offset, sp.Timestamp, err = r.log.OffsetForTimestamp(rp.Timestamp)
				}
			}
			sp.ErrorCode = errorCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
