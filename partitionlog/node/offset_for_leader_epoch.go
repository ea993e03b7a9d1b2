package node

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetForLeaderEpoch tells a consumer (or, later, a follower) where a leader epoch
// ended, so it can detect log truncation (KIP-101, KIP-320).
func (s *Server) offsetForLeaderEpoch(req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	snap := s.view.Snapshot()
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			r, p, err := s.lookup(snap, rt.Topic, rp.Partition)
			if err == nil {
				err = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch)
			}
			switch {
			case err != nil:
			case rp.LeaderEpoch == p.LeaderEpoch:
				// The current epoch has not ended: it reaches the log end, even
				// before its first batch is written.
				sp.LeaderEpoch, sp.EndOffset = p.LeaderEpoch, r.log.EndOffset()
			default:
				sp.LeaderEpoch, sp.EndOffset = r.log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			sp.ErrorCode = errorCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
