package node

import (
	"context"
	"errors"
	"time"

	"github.com/strait-io/strait/partitionlog"
	"github.com/strait-io/strait/routing"
)

// maintain runs retention, compaction and producer expiry over the open partitions until
// ctx ends. One goroutine does all, one partition at a time, so maintenance never
// competes with itself for the disk; appends and reads go on meanwhile.
func (s *Server) maintain(ctx context.Context) {
	retention := time.NewTicker(s.cfg.RetentionCheckInterval)
	defer retention.Stop()
	cleaner := time.NewTicker(s.cfg.CleanerBackoff)
	defer cleaner.Stop()
	producers := time.NewTicker(s.cfg.ProducerIDExpirationCheck)
	defer producers.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retention.C:
			s.eachPartition(s.enforceRetention)
		case <-cleaner.C:
			s.eachPartition(s.compact)
		case <-producers.C:
			s.eachPartition(s.expireProducers)
		}
	}
}

// expireProducers forgets the partition's producers idle past producer.id.expiration.ms.
func (s *Server) expireProducers(key partitionKey, r *replica, _ *routing.Topic) {
	n, err := r.log.ExpireProducers(s.cfg.ProducerIDExpiration)
	if n > 0 {
		s.logger.Debug("expired idle producers", "topic", key.topic, "partition", key.index, "producers", n)
	}
	if err != nil && !errors.Is(err, partitionlog.ErrClosed) {
		s.logger.Warn("producer expiry failed; will retry at the next check", "topic", key.topic, "partition", key.index, "err", err)
	}
}

// eachPartition calls fn for every open partition whose topic is in the metadata.
func (s *Server) eachPartition(fn func(key partitionKey, r *replica, t *routing.Topic)) {
	snap := s.view.Snapshot()
	for key, r := range s.openPartitions() {
		if t, ok := snap.Topic(key.topic); ok && t.ID == r.topicID {
			fn(key, r, t)
		}
	}
}

func (s *Server) enforceRetention(key partitionKey, r *replica, t *routing.Topic) {
	if !t.Deletes() {
		return
	}
	deleted, err := r.log.EnforceRetention(time.Now())
	if deleted > 0 {
		r.changed() // the log start moved: followers follow it
	}
	switch {
	case err != nil && !errors.Is(err, partitionlog.ErrClosed):
		s.logger.Warn("retention failed; will retry at the next check", "topic", key.topic, "partition", key.index, "err", err)
	case deleted > 0:
		s.logger.Info("retention deleted segments", "topic", key.topic, "partition", key.index,
			"segments", deleted, "log_start_offset", r.log.StartOffset())
	}
}

func (s *Server) compact(key partitionKey, r *replica, t *routing.Topic) {
	if !t.Compacted() {
		return
	}
	hw := r.highWatermark()
	if hw == 0 {
		return // nothing is committed yet; 0 would mean no bound
	}
	stats, err := r.log.Compact(time.Now(), compactConfig(t, hw))
	switch {
	case errors.Is(err, partitionlog.ErrClosed), errors.Is(err, partitionlog.ErrCompactionInProgress), errors.Is(err, partitionlog.ErrCompactionAborted):
		s.logger.Debug("compaction skipped", "err", err)
	case err != nil:
		s.logger.Warn("compaction failed; will retry", "topic", key.topic, "partition", key.index, "err", err)
	case stats.SegmentsIn > 0:
		s.logger.Info("compacted partition", "topic", key.topic, "partition", key.index,
			"segments_in", stats.SegmentsIn, "segments_out", stats.SegmentsOut,
			"bytes_in", stats.BytesIn, "bytes_out", stats.BytesOut, "records_removed", stats.RecordsRemoved, "took", stats.Took)
	}
}
