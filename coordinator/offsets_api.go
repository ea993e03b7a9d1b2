package coordinator

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"

	"github.com/strait-io/strait/coordinator/offsets"
)

// OffsetCommit validates the committer against its group, writes the offsets to
// __consumer_offsets with acks=all, and only then acknowledges them.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) (resp *kmsg.OffsetCommitResponse) {
	ctx, span := startGroupSpan(ctx, "commit", req.Group)
	defer func() {
		endGroupSpan(span, firstCommitError(resp), attribute.String(memberAttr, req.MemberID), attribute.Int(generationAttr, int(req.Generation)))
	}()
	s, code := c.shardFor(req.Group)
	if code != 0 {
		return commitResponse(req, func(kmsg.OffsetCommitRequestTopicPartition) int16 { return code })
	}
	resp, err := do(ctx, s, func(reply func(*kmsg.OffsetCommitResponse)) {
		reply(s.commit(req))
	})
	if err != nil {
		code := waitErrorCode(err)
		return commitResponse(req, func(kmsg.OffsetCommitRequestTopicPartition) int16 { return code })
	}
	return resp
}

// commit does OffsetCommit's work on the shard's goroutine.
func (s *shard) commit(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	if code := s.validateCommit(req); code != 0 {
		return commitResponse(req, func(kmsg.OffsetCommitRequestTopicPartition) int16 { return code })
	}
	now := time.Now()
	snap := s.c.view.Snapshot()
	codes := make(map[offsetKey]int16)
	var kvs []offsets.KV
	var applied []offsets.Record
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
			if req.Version < 6 {
				commit.LeaderEpoch = -1
			}
			if p.Metadata != nil {
				commit.Metadata = *p.Metadata
			}
			key, value := offsets.OffsetCommitRecord(req.Group, t.Topic, p.Partition, commit)
			kvs = append(kvs, offsets.KV{Key: key, Value: value})
			applied = append(applied, offsets.Record{Group: req.Group, Topic: t.Topic, Partition: p.Partition, Commit: &commit, IsOffset: true})
		}
	}
	if len(kvs) > 0 {
		if err := s.write(s.eventParent(), kvs); err != nil {
			s.c.logger.WarnContext(s.eventContext(), "committing offsets failed; the client will retry", "group", req.Group, "err", err)
			return commitResponse(req, func(p kmsg.OffsetCommitRequestTopicPartition) int16 { return kerr.CoordinatorNotAvailable.Code })
		}
		for _, r := range applied {
			s.table.Apply(r)
		}
	}
	return commitResponse(req, func(p kmsg.OffsetCommitRequestTopicPartition) int16 { return 0 }, codes)
}

// firstCommitError is the first error code of a commit's answer, 0 for none.
func firstCommitError(resp *kmsg.OffsetCommitResponse) int16 {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return p.ErrorCode
			}
		}
	}
	return 0
}

type offsetKey struct {
	topic     string
	partition int32
}

// validateCommit fences commits from members of an older generation (classic) or
// member epoch (KIP-848). Commits from outside any group are allowed while it is empty.
func (s *shard) validateCommit(req *kmsg.OffsetCommitRequest) int16 {
	generation := req.Generation
	if req.Version == 0 {
		generation = -1
	}
	if g, ok := s.classic[req.Group]; ok {
		return g.ValidateCommit(req.MemberID, req.InstanceID, generation)
	}
	if g, ok := s.consumer[req.Group]; ok {
		return g.ValidateCommit(req.MemberID, generation)
	}
	if generation >= 0 || req.MemberID != "" {
		return kerr.IllegalGeneration.Code // no such group to be a member of
	}
	return 0
}

// commitResponse answers every partition of req with code(p), or with a per-partition
// override from the optional map.
func commitResponse(req *kmsg.OffsetCommitRequest, code func(kmsg.OffsetCommitRequestTopicPartition) int16, overrides ...map[offsetKey]int16) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code(p)
			for _, o := range overrides {
				if c, ok := o[offsetKey{t.Topic, p.Partition}]; ok {
					rp.ErrorCode = c
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// OffsetFetch returns committed offsets: for one group (v0-7) or several (v8+).
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = req.Group
		for _, t := range req.Topics {
			g.Topics = append(g.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		if req.Topics == nil {
			g.Topics = nil
		}
		one := c.fetchGroup(ctx, g, req.RequireStable)
		resp.ErrorCode = one.ErrorCode
		for _, t := range one.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseTopicPartition{
					Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode,
				})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, g := range req.Groups {
		resp.Groups = append(resp.Groups, c.fetchGroup(ctx, g, req.RequireStable))
	}
	return resp
}

// fetchGroup answers OffsetFetch for one group; nil Topics means every committed offset.
func (c *Coordinator) fetchGroup(ctx context.Context, req kmsg.OffsetFetchRequestGroup, requireStable bool) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = req.Group
	s, code := c.shardFor(req.Group)
	if code != 0 {
		out.ErrorCode = code
		return out
	}
	got, err := do(ctx, s, func(reply func(kmsg.OffsetFetchResponseGroup)) {
		reply(s.fetchOffsets(req, requireStable))
	})
	if err != nil {
		out.ErrorCode = waitErrorCode(err)
		return out
	}
	return got
}

func (s *shard) fetchOffsets(req kmsg.OffsetFetchRequestGroup, requireStable bool) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = req.Group
	if req.MemberID != nil {
		if code := s.validateFetch(req.Group, *req.MemberID, req.MemberEpoch); code != 0 {
			out.ErrorCode = code
			return out
		}
	}
	topics := req.Topics
	if topics == nil {
		for topic, parts := range s.table.Group(req.Group) {
			t := kmsg.OffsetFetchRequestGroupTopic{Topic: topic}
			for p := range parts {
				t.Partitions = append(t.Partitions, p)
			}
			topics = append(topics, t)
		}
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
			if commit, ok := s.table.Get(req.Group, t.Topic, p); ok {
				rp.Offset, rp.LeaderEpoch = commit.Offset, commit.LeaderEpoch
				rp.Metadata = kmsg.StringPtr(commit.Metadata)
			}
			if requireStable && s.pendingFor(req.Group, t.Topic, p) {
				rp.Offset, rp.ErrorCode = -1, kerr.UnstableOffsetCommit.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out
}

func (s *shard) validateFetch(group, member string, epoch int32) int16 {
	if g, ok := s.classic[group]; ok {
		return g.ValidateOffsetFetch(member, epoch)
	}
	if g, ok := s.consumer[group]; ok {
		return g.ValidateOffsetFetch(member, epoch)
	}
	return 0
}

// OffsetDelete removes a group's committed offsets for partitions it no longer consumes.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	s, code := c.shardFor(req.Group)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	got, err := do(ctx, s, func(reply func(*kmsg.OffsetDeleteResponse)) {
		reply(s.deleteOffsets(req))
	})
	if err != nil {
		resp.ErrorCode = waitErrorCode(err)
		return resp
	}
	return got
}

func (s *shard) deleteOffsets(req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if _, known := s.classic[req.Group]; !known && len(s.table.Group(req.Group)) == 0 {
		if _, known := s.consumer[req.Group]; !known {
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			return resp
		}
	}
	subscribed := func(string) bool { return false }
	if !s.groupEmpty(req.Group) {
		var known bool
		if subscribed, known = s.subscribedFunc(req.Group); !known {
			subscribed = func(string) bool { return true } // cannot tell: keep every offset
		}
	}
	var kvs []offsets.KV
	var deleted []offsets.Record
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if subscribed(t.Topic) {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := s.table.Get(req.Group, t.Topic, p.Partition); ok {
				key, value := offsets.OffsetTombstone(req.Group, t.Topic, p.Partition)
				kvs = append(kvs, offsets.KV{Key: key, Value: value})
				deleted = append(deleted, offsets.Record{Group: req.Group, Topic: t.Topic, Partition: p.Partition, IsOffset: true})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(kvs) > 0 {
		if err := s.write(s.eventParent(), kvs); err != nil {
			s.c.logger.Warn("deleting offsets failed", "group", req.Group, "err", err)
			resp.Topics = nil
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		for _, r := range deleted {
			s.table.Apply(r)
		}
	}
	return resp
}
