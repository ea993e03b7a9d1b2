package proxy

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeTopicPartitions: KIP-966's paginated topic description, as Kafka 3.7+
// admin clients send it.
func TestDescribeTopicPartitions(t *testing.T) {
	c := startCluster(t, withNodes(2))
	cl := dial(t, c.proxyAddr)
	c.createTopic(t, "dtp-a", 3, nil)
	c.createTopic(t, "dtp-b", 2, nil)

	describe := func(limit int32, cursor *kmsg.DescribeTopicPartitionsRequestCursor, topics ...string) *kmsg.DescribeTopicPartitionsResponse {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.ResponsePartitionLimit, req.Cursor = limit, cursor
		for _, name := range topics {
			req.Topics = append(req.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: name})
		}
		return do[*kmsg.DescribeTopicPartitionsResponse](t, cl, req)
	}
	// listed is what Metadata lists: every id a partition names must be among them.
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	listed := brokerIDs(do[*kmsg.MetadataResponse](t, cl, meta))

	t.Run("named topics in name order, ids among Metadata's brokers", func(t *testing.T) {
		resp := describe(0, nil, "dtp-b", "dtp-a", "dtp-missing")
		var names []string
		for _, dt := range resp.Topics {
			names = append(names, *dt.Topic)
		}
		if !slices.Equal(names, []string{"dtp-a", "dtp-b", "dtp-missing"}) {
			t.Fatalf("topics %v; want dtp-a, dtp-b, dtp-missing", names)
		}
		if resp.Topics[2].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("dtp-missing: error %d, want UNKNOWN_TOPIC_OR_PARTITION", resp.Topics[2].ErrorCode)
		}
		if len(resp.Topics[0].Partitions) != 3 || len(resp.Topics[1].Partitions) != 2 || resp.NextCursor != nil {
			t.Fatalf("partitions %d and %d, cursor %v; want 3 and 2, no cursor",
				len(resp.Topics[0].Partitions), len(resp.Topics[1].Partitions), resp.NextCursor)
		}
		for _, dt := range resp.Topics[:2] {
			for _, dp := range dt.Partitions {
				if dp.ErrorCode != 0 || !slices.Contains(dp.Replicas, dp.LeaderID) {
					t.Errorf("%s/%d: error %d, leader %d not in replicas %v", *dt.Topic, dp.Partition, dp.ErrorCode, dp.LeaderID, dp.Replicas)
				}
				for _, id := range slices.Concat(dp.Replicas, dp.ISR) {
					if !slices.Contains(listed, id) {
						t.Errorf("%s/%d names broker %d, which Metadata does not list (%v)", *dt.Topic, dp.Partition, id, listed)
					}
				}
			}
		}
	})

	t.Run("all topics when none is named", func(t *testing.T) {
		resp := describe(0, nil)
		var names []string
		for _, dt := range resp.Topics {
			names = append(names, *dt.Topic)
		}
		if !slices.Contains(names, "dtp-a") || !slices.Contains(names, "dtp-b") || !slices.IsSorted(names) {
			t.Fatalf("topics %v; want every topic in name order", names)
		}
	})

	t.Run("a partition limit pages with NextCursor", func(t *testing.T) {
		type part struct {
			topic string
			index int32
		}
		var seen []part
		var cursor *kmsg.DescribeTopicPartitionsRequestCursor
		for pages := 0; ; pages++ {
			if pages == 10 {
				t.Fatalf("still paging after 10 pages: %v", seen)
			}
			resp := describe(2, cursor, "dtp-a", "dtp-b")
			n := 0
			for _, dt := range resp.Topics {
				for _, dp := range dt.Partitions {
					seen = append(seen, part{*dt.Topic, dp.Partition})
					n++
				}
			}
			if n > 2 {
				t.Fatalf("page of %d partitions; limit 2", n)
			}
			if resp.NextCursor == nil {
				break
			}
			cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
		}
		want := []part{{"dtp-a", 0}, {"dtp-a", 1}, {"dtp-a", 2}, {"dtp-b", 0}, {"dtp-b", 1}}
		if !slices.Equal(seen, want) {
			t.Fatalf("paged through %v; want %v", seen, want)
		}
	})

	t.Run("a cursor on a topic not named: INVALID_REQUEST", func(t *testing.T) {
		resp := describe(0, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "dtp-b"}, "dtp-a")
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("topics %+v; want dtp-a with INVALID_REQUEST", resp.Topics)
		}
	})
}
