package node

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/partitionlog"
	"github.com/strait-io/strait/routing"
)

// fetch reads each partition from its fetch offset and long-polls: while fewer than
// MinBytes are available it waits for the next append, up to MaxWaitMillis. A partition
// error answers at once, as in Kafka. Fetch sessions end at the proxy, so the node
// always answers full, sessionless fetches.
//
// With Config.ZeroCopy the record bytes are not read at all: the answer names ranges
// of segment files, which the wire server sends with sendfile.
func (s *Server) fetch(ctx context.Context, req *kmsg.FetchRequest) kmsg.Response {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		appended := s.appended.wait() // taken before reading so no append slips between
		f := s.readFetch(req)
		wait := time.Until(deadline)
		if f.size >= int(req.MinBytes) || f.failed || wait <= 0 || ctx.Err() != nil {
			return f.response()
		}
		f.release()
		timer := time.NewTimer(wait)
		select {
		case <-appended:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
	}
}

// fetchRead is one pass over a fetch's partitions.
type fetchRead struct {
	resp     *kmsg.FetchResponse
	size     int
	failed   bool
	ranges   [][]wire.FileRange // file ranges, one list per wire.Placeholder
	releases []func()
}

// response is the answer to send: spliced when record bytes are file ranges.
func (f *fetchRead) response() kmsg.Response {
	if len(f.ranges) == 0 {
		return f.resp
	}
	return &wire.Spliced{Response: f.resp, Ranges: f.ranges, Release: f.release}
}

func (f *fetchRead) release() {
	for _, r := range f.releases {
		r()
	}
	f.releases = nil
}

// readFetch reads every requested partition once, keeping to the request's MaxBytes
// (beyond the first batch, which is always returned whole so consumers progress, KIP-74).
func (s *Server) readFetch(req *kmsg.FetchRequest) *fetchRead {
	f := &fetchRead{resp: req.ResponseKind().(*kmsg.FetchResponse)}
	snap := s.view.Snapshot()
	budget := req.MaxBytes
	if req.Version < 3 || budget <= 0 {
		budget = 1<<31 - 1
	}
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp, n := s.readPartition(f, snap, req.ReplicaID, rt.Topic, rp, min(rp.PartitionMaxBytes, budget), f.size == 0)
			f.size += n
			budget -= int32(n)
			f.failed = f.failed || sp.ErrorCode != 0
			st.Partitions = append(st.Partitions, sp)
		}
		f.resp.Topics = append(f.resp.Topics, st)
	}
	return f
}

// readPartition answers one partition and returns how many record bytes it carries.
// A consumer (replica -1) reads up to the high watermark; a follower (its node id)
// reads up to the log end, and its fetch offset tells the leader how far it got.
func (s *Server) readPartition(f *fetchRead, snap *routing.Snapshot, replicaID int32, topic string, rp kmsg.FetchRequestTopicPartition, maxBytes int32, first bool) (kmsg.FetchResponseTopicPartition, int) {
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
	sp.RecordBatches = []byte{} // never null: librdkafka rejects a null record set
	r, p, err := s.lookup(snap, topic, rp.Partition)
	if err == nil {
		err = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch)
	}
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return sp, 0
	}
	readTo, err := s.readBound(r, replicaID, rp.FetchOffset)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return sp, 0
	}
	highWatermark := r.highWatermark()
	sp.HighWatermark, sp.LastStableOffset = highWatermark, highWatermark
	sp.LogStartOffset = r.log.StartOffset()
	if maxBytes <= 0 && !first {
		return sp, 0 // budget spent: report offsets, send no records
	}
	maxBytes = max(maxBytes, 0)
	if s.cfg.ZeroCopy {
		if n, err := s.readSections(f, &sp, r, rp.FetchOffset, readTo, maxBytes); !errors.Is(err, partitionlog.ErrNoSections) {
			if err != nil {
				sp.ErrorCode = errorCode(err)
			}
			return sp, n
		}
	}
	res, err := r.log.Read(rp.FetchOffset, readTo, maxBytes)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return sp, 0
	}
	sp.RecordBatches = res.Records
	sp.LogStartOffset = res.LogStartOffset
	return sp, len(res.Records)
}

// readBound is the offset a fetch may read up to, and for a follower it records the
// progress its fetch offset reports, which may advance the high watermark.
func (s *Server) readBound(r *replica, replicaID int32, fetchOffset int64) (int64, error) {
	if replicaID < 0 {
		return r.highWatermark(), nil
	}
	outOfISR, err := r.followerFetched(replicaID, fetchOffset)
	if err != nil {
		return 0, err
	}
	if outOfISR {
		s.kickISR() // it may have caught up: the ISR loop decides
	}
	return r.log.EndOffset(), nil
}

// readSections points the partition's record bytes at segment file ranges.
func (s *Server) readSections(f *fetchRead, sp *kmsg.FetchResponseTopicPartition, r *replica, offset, highWatermark int64, maxBytes int32) (int, error) {
	sections, meta, release, err := r.log.ReadSections(offset, highWatermark, maxBytes)
	if err != nil {
		return 0, err
	}
	sp.LogStartOffset = meta.LogStartOffset
	if len(sections) == 0 {
		release()
		return 0, nil
	}
	f.releases = append(f.releases, release)
	ranges := make([]wire.FileRange, len(sections))
	n := 0
	for i, sec := range sections {
		ranges[i] = wire.FileRange{File: sec.File, Offset: sec.Offset, Length: sec.Length}
		n += int(sec.Length)
	}
	sp.RecordBatches = wire.Placeholder(len(f.ranges))
	f.ranges = append(f.ranges, ranges)
	return n, nil
}
