package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/partitionlog"
)

// Follower fetch sizes: Kafka's replica.fetch.max.bytes and replica.fetch.response.max.bytes.
const (
	replicaFetchMaxBytes         = 1 << 20
	replicaFetchResponseMaxBytes = 10 << 20
	replicaFetchWait             = 500 * time.Millisecond // replica.fetch.wait.max.ms
	replicaFetchBackoff          = time.Second            // replica.fetch.backoff.ms
)

// follow replicates one partition from its leader until ctx ends: first it cuts any
// tail the leader does not have (KIP-101/KIP-279), then it fetches from its log end
// offset with ordinary Fetch requests that carry its replica id, as Kafka followers do.
func (s *Server) follow(ctx context.Context, key partitionKey, r *replica, leader, leaderEpoch int32) {
	logger := s.logger.With("topic", key.topic, "partition", key.index, "leader", leader, "leader_epoch", leaderEpoch)
	truncated := false
	for ctx.Err() == nil {
		addr, ok := s.view.Snapshot().Nodes[leader]
		if !ok {
			sleepCtx(ctx, replicaFetchBackoff)
			continue
		}
		var err error
		if !truncated {
			err = s.truncateToLeader(ctx, key, r, addr.Addr, leaderEpoch)
			truncated = err == nil
		} else {
			err = s.fetchFromLeader(ctx, key, r, addr.Addr, leaderEpoch)
			if errors.Is(err, partitionlog.ErrOffsetGap) {
				truncated = false
			}
		}
		if err != nil && ctx.Err() == nil {
			logger.Debug("replication from the leader failed; retrying", "err", err)
			sleepCtx(ctx, replicaFetchBackoff)
		}
	}
}

// truncateToLeader asks the leader where this replica's latest epoch ends and cuts the
// log there, so a former leader's unreplicated tail goes (KIP-101, KIP-279).
func (s *Server) truncateToLeader(ctx context.Context, key partitionKey, r *replica, addr string, leaderEpoch int32) error {
	latest := r.log.LatestEpoch()
	if latest < 0 {
		return nil // nothing written under any epoch: nothing can diverge
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version, req.ReplicaID = 4, s.cfg.ID
	t := kmsg.NewOffsetForLeaderEpochRequestTopic()
	t.Topic = key.topic
	p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	p.Partition, p.CurrentLeaderEpoch, p.LeaderEpoch = key.index, leaderEpoch, latest
	t.Partitions = []kmsg.OffsetForLeaderEpochRequestTopicPartition{p}
	req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{t}
	resp, err := s.peers.Do(ctx, addr, req)
	if err != nil {
		return fmt.Errorf("ask leader at %s where epoch %d ends: %w", addr, latest, err)
	}
	got := resp.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(got.ErrorCode); err != nil {
		return fmt.Errorf("ask leader at %s where epoch %d ends: %w", addr, latest, err)
	}
	point := r.log.DivergencePoint(got.LeaderEpoch, got.EndOffset)
	end := r.log.EndOffset()
	if point >= end {
		return nil
	}
	s.logger.Warn("truncating a divergent tail to the leader's epoch boundary", "topic", key.topic, "partition", key.index,
		"from", end, "to", point, "local_epoch", latest, "leader_answer_epoch", got.LeaderEpoch, "leader_answer_end", got.EndOffset)
	if err := r.log.TruncateTo(point); err != nil {
		return fmt.Errorf("truncate to %d: %w", point, err)
	}
	// An answer about an epoch this replica never had gives a safe point that may
	// still be too high; ask again from the new end until nothing is cut (KIP-279).
	return s.truncateToLeader(ctx, key, r, addr, leaderEpoch)
}

// fetchFromLeader does one replica fetch and appends what it brings.
func (s *Server) fetchFromLeader(ctx context.Context, key partitionKey, r *replica, addr string, leaderEpoch int32) error {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID = 12, s.cfg.ID
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = int32(replicaFetchWait/time.Millisecond), 1, replicaFetchResponseMaxBytes
	req.SessionEpoch = -1
	t := kmsg.NewFetchRequestTopic()
	t.Topic = key.topic
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition, p.FetchOffset, p.PartitionMaxBytes = key.index, r.log.EndOffset(), replicaFetchMaxBytes
	p.CurrentLeaderEpoch, p.LastFetchedEpoch = leaderEpoch, r.log.LatestEpoch()
	t.Partitions = []kmsg.FetchRequestTopicPartition{p}
	req.Topics = []kmsg.FetchRequestTopic{t}
	fetchCtx, cancel := context.WithTimeout(ctx, replicaFetchWait+30*time.Second)
	defer cancel()
	resp, err := s.peers.Do(fetchCtx, addr, req)
	if err != nil {
		return fmt.Errorf("fetch from leader at %s: %w", addr, err)
	}
	got := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(got.ErrorCode); err != nil {
		return fmt.Errorf("fetch from leader at %s: %w", addr, err)
	}
	if len(got.RecordBatches) > 0 {
		// At: a compacted leader may have no batch at this replica's end offset.
		if _, err := r.log.AppendAsFollowerAt(p.FetchOffset, got.RecordBatches); err != nil {
			return fmt.Errorf("append from leader: %w", err)
		}
	}
	r.log.SetHighWatermark(min(got.HighWatermark, r.log.EndOffset()))
	// The leader's log start moved (DeleteRecords, retention): follow it, as Kafka does.
	if start := min(got.LogStartOffset, r.log.EndOffset()); start > r.log.StartOffset() {
		if _, err := r.log.DeleteRecordsBefore(start); err != nil {
			return fmt.Errorf("follow the leader's log start %d: %w", start, err)
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
