package node

import (
	"context"
	"time"
)

// manageISR proposes ISR changes for the partitions this node leads: shrinking
// followers that lag more than replica.lag.time.max.ms and expanding those that caught
// up. Each change goes through Config.AlterISR, a compare-and-set in the metadata store
// (Kafka's AlterPartition); the outcome is told to the leader state. It runs every half
// lag time, as Kafka's ISR expiration task does, and at once when a follower outside
// the ISR fetches.
func (s *Server) manageISR(ctx context.Context) {
	ticker := time.NewTicker(max(s.cfg.ReplicaLagTimeMax/2, 100*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-s.isrKick:
		}
		if s.cfg.AlterISR == nil {
			continue
		}
		snap := s.view.Snapshot()
		for key, r := range s.openPartitions() {
			p, ok := snap.Partition(key.topic, key.index)
			if !ok || p.Leader != s.cfg.ID {
				continue
			}
			s.proposeISR(ctx, key, r, p.LeaderEpoch, p.PartitionEpoch)
		}
	}
}

func (s *Server) proposeISR(ctx context.Context, key partitionKey, r *replica, leaderEpoch, partitionEpoch int32) {
	r.state.mu.Lock()
	l := r.state.leader
	if l == nil || r.state.leaderEpoch != leaderEpoch {
		r.state.mu.Unlock()
		return
	}
	isr, ok := l.Propose(time.Now())
	r.state.mu.Unlock()
	if !ok {
		return
	}
	err := s.cfg.AlterISR(ctx, key.topic, key.index, leaderEpoch, isr, partitionEpoch)
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	if r.state.leader != l {
		return // leadership changed meanwhile; the new state starts from the metadata
	}
	if err != nil {
		l.Rejected()
		s.logger.Warn("changing the ISR failed; will retry", "topic", key.topic, "partition", key.index, "isr", isr, "err", err)
		return
	}
	l.Committed(isr)
	r.publishHighWatermarkLocked()
	s.logger.Info("changed the ISR", "topic", key.topic, "partition", key.index, "isr", isr)
}

// kickISR asks the ISR loop to run soon, without waiting.
func (s *Server) kickISR() {
	select {
	case s.isrKick <- struct{}{}:
	default:
	}
}
