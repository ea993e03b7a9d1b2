package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator/offsets"
)

// Transactional offset commits (KIP-98, KIP-447). TxnOffsetCommit writes a group's
// offsets to __consumer_offsets in a transactional batch of the producer, and the group
// holds them apart, per producer, until the transaction coordinator ends the transaction
// with a marker in the same partition: COMMIT applies them to the committed offsets, ABORT
// drops them. Kafka's group coordinator does the same (pendingTransactionalOffsetCommits),
// which is what makes consume-transform-produce exactly once: a group's position moves
// only with the records its transaction produced. A coordinator that replays the partition
// meets the batches and markers in order and rebuilds both.

// TxnLog is what an OffsetsLog also provides for transactions: a transactional append
// (the produce request names the transactional id) and a marker write (WriteTxnMarkers
// to the partition's leader), both acknowledged by every in-sync replica.
type TxnLog interface {
	AppendTransactional(ctx context.Context, partition int32, transactionalID string, batch []byte) error
	WriteMarker(ctx context.Context, partition int32, producerID int64, epoch int16, commit bool, coordinatorEpoch int32) error
}

var errNoTxnLog = errors.New("the offsets log cannot write transactions")

// txnSeq is the sequence of a producer's next transactional batch in this partition: only
// the group coordinator writes a producer's batches here, so it numbers them as the
// producer would (0 at each new epoch), and the partition's duplicate detection applies.
type txnSeq struct {
	epoch int16
	next  int32
}

// TxnOffsetCommit validates the committer against its group (generation and member, when
// the request carries them: KIP-447), writes the offsets in the producer's transaction, and
// holds them pending until the transaction ends.
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	s, code := c.shardFor(req.Group)
	if code != 0 {
		return txnCommitResponse(req, code, nil)
	}
	resp, err := do(ctx, s, func(reply func(*kmsg.TxnOffsetCommitResponse)) { reply(s.txnCommit(req)) })
	if err != nil {
		return txnCommitResponse(req, waitErrorCode(err), nil)
	}
	return resp
}

func (s *shard) txnCommit(req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	tl, ok := s.c.log.(TxnLog)
	if !ok {
		return txnCommitResponse(req, kerr.CoordinatorNotAvailable.Code, nil)
	}
	if req.Version >= 3 && (req.Generation >= 0 || req.MemberID != "") {
		if code := s.validateCommit(&kmsg.OffsetCommitRequest{Version: 7, Group: req.Group, Generation: req.Generation, MemberID: req.MemberID, InstanceID: req.InstanceID}); code != 0 {
			return txnCommitResponse(req, code, nil)
		}
	}
	now := time.Now()
	snap := s.c.view.Snapshot()
	codes := map[offsetKey]int16{}
	var kvs []offsets.KV
	var pending []offsets.Record
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			k := offsetKey{t.Topic, p.Partition}
			if _, ok := snap.Partition(t.Topic, p.Partition); !ok {
				codes[k] = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if p.Metadata != nil && len(*p.Metadata) > s.c.cfg.MaxMetadataBytes {
				codes[k] = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			commit := offsets.Commit{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, CommitTime: now}
			if p.Metadata != nil {
				commit.Metadata = *p.Metadata
			}
			key, value := offsets.OffsetCommitRecord(req.Group, t.Topic, p.Partition, commit)
			kvs = append(kvs, offsets.KV{Key: key, Value: value})
			pending = append(pending, offsets.Record{Group: req.Group, Topic: t.Topic, Partition: p.Partition, Commit: &commit, IsOffset: true})
		}
	}
	if len(kvs) == 0 {
		return txnCommitResponse(req, 0, codes)
	}
	seq := s.nextTxnSeq(req.ProducerID, req.ProducerEpoch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := tl.AppendTransactional(ctx, s.index, req.TransactionalID, offsets.TxnBatch(kvs, req.ProducerID, req.ProducerEpoch, seq.next, now))
	if err != nil {
		s.c.logger.Warn("writing transactional offsets failed; the producer retries", "group", req.Group, "transactional_id", req.TransactionalID, "err", err)
		code := kerr.CoordinatorNotAvailable.Code
		var ke *kerr.Error
		if errors.As(err, &ke) && (ke == kerr.InvalidProducerEpoch || ke == kerr.ProducerFenced) {
			code = kerr.ProducerFenced.Code
		}
		return txnCommitResponse(req, code, nil)
	}
	s.txnSeqs[req.ProducerID] = txnSeq{epoch: req.ProducerEpoch, next: seq.next + int32(len(kvs))}
	s.txnOffsets[req.ProducerID] = append(s.txnOffsets[req.ProducerID], pending...)
	return txnCommitResponse(req, 0, codes)
}

// nextTxnSeq is where the producer's next batch here starts: 0 at a new epoch.
func (s *shard) nextTxnSeq(pid int64, epoch int16) txnSeq {
	if cur, ok := s.txnSeqs[pid]; ok && cur.epoch == epoch {
		return cur
	}
	return txnSeq{epoch: epoch}
}

// replayBatch follows the transactional batches and markers met while loading: it
// numbers the producers' sequences and ends their pending offsets at their markers.
func (s *shard) replayBatch(b offsets.BatchInfo) {
	s.replaying = b
	switch {
	case b.Control:
		s.endTxnOffsets(b.ProducerID, b.Commit)
		if cur, ok := s.txnSeqs[b.ProducerID]; ok && b.ProducerEpoch > cur.epoch {
			s.txnSeqs[b.ProducerID] = txnSeq{epoch: b.ProducerEpoch}
		}
	case b.Transactional && b.ProducerID >= 0:
		s.txnSeqs[b.ProducerID] = txnSeq{epoch: b.ProducerEpoch, next: b.BaseSequence + int32(b.LastOffset-b.BaseOffset) + 1}
	}
}

// endTxnOffsets applies (commit) or drops the producer's pending offsets.
func (s *shard) endTxnOffsets(pid int64, commit bool) {
	if commit {
		for _, r := range s.txnOffsets[pid] {
			s.table.Apply(r)
		}
	}
	delete(s.txnOffsets, pid)
}

// WriteTxnMarker ends a producer's transaction in __consumer_offsets partition: it writes
// the marker (the transaction coordinator sends it here, as Kafka sends it to the group
// coordinator that leads the partition), then applies or drops the pending offsets. It
// returns a Kafka error code.
func (c *Coordinator) WriteTxnMarker(ctx context.Context, partition int32, pid int64, epoch int16, commit bool, coordinatorEpoch int32) int16 {
	c.mu.Lock()
	s, ok := c.mu.shards[partition]
	c.mu.Unlock()
	switch {
	case !ok:
		return kerr.NotCoordinator.Code
	case !s.ready():
		return kerr.CoordinatorLoadInProgress.Code
	}
	code, err := do(ctx, s, func(reply func(int16)) {
		tl, ok := s.c.log.(TxnLog)
		if !ok {
			reply(kerr.CoordinatorNotAvailable.Code)
			return
		}
		wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := tl.WriteMarker(wctx, partition, pid, epoch, commit, coordinatorEpoch); err != nil {
			s.c.logger.Warn("writing a transaction marker to __consumer_offsets failed; the transaction coordinator retries", "partition", partition, "producer_id", pid, "err", err)
			var ke *kerr.Error
			if errors.As(err, &ke) {
				reply(ke.Code)
				return
			}
			reply(kerr.CoordinatorNotAvailable.Code)
			return
		}
		if cur, ok := s.txnSeqs[pid]; ok && epoch > cur.epoch {
			s.txnSeqs[pid] = txnSeq{epoch: epoch}
		}
		s.endTxnOffsets(pid, commit)
		reply(0)
	})
	if err != nil {
		return waitErrorCode(err)
	}
	return code
}

// pendingFor reports whether a transaction holds offsets of group's partition, which an
// OffsetFetch with RequireStable must not answer yet (KIP-447: UNSTABLE_OFFSET_COMMIT).
func (s *shard) pendingFor(group, topic string, partition int32) bool {
	for _, recs := range s.txnOffsets {
		for _, r := range recs {
			if r.Group == group && r.Topic == topic && r.Partition == partition {
				return true
			}
		}
	}
	return false
}

func txnCommitResponse(req *kmsg.TxnOffsetCommitRequest, code int16, overrides map[offsetKey]int16) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			if c, ok := overrides[offsetKey{t.Topic, p.Partition}]; ok {
				rp.ErrorCode = c
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
