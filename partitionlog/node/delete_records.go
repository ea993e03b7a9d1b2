package node

import (
	"fmt"

	"github.com/strait-io/strait/partitionlog"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// deleteRecords advances each partition's log start offset; -1 means the high watermark
// (Kafka's DeleteRecordsRequest.HIGH_WATERMARK).
func (s *Server) deleteRecords(req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	snap := s.view.Snapshot()
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			r, _, err := s.lookup(snap, rt.Topic, rp.Partition)
			if err == nil {
				offset, hw := rp.Offset, r.highWatermark()
				switch {
				case offset == -1:
					offset = hw
				case offset > hw:
					err = fmt.Errorf("%w: %d is above the high watermark %d", partitionlog.ErrOffsetOutOfRange, offset, hw)
				}
				if err == nil {
					sp.LowWatermark, err = r.log.DeleteRecordsBefore(offset)
					r.changed() // the log start moved: followers follow it
				}
				if err != nil {
					err = fmt.Errorf("delete records of %s-%d before %d: %w", rt.Topic, rp.Partition, offset, err)
				}
			}
			sp.ErrorCode = errorCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
