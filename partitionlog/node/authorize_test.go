package node

import (
	"context"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/authz"
	"github.com/strait-io/strait/internal/wire"
)

// TestAuthorizeClients: an ordinary client's requests are decided per topic, as a proxy
// decides them; what an internal peer sends is not decided again.
func TestAuthorizeClients(t *testing.T) {
	h := newNodeHarness(t)
	a := acl.New(nil)
	a.Update([]acl.Binding{
		{ResourceType: acl.Topic, ResourceName: "open", PatternType: acl.Literal, Principal: "User:bob", Host: "*", Operation: acl.All, Permission: acl.Allow},
		{ResourceType: acl.Topic, ResourceName: "shut", PatternType: acl.Literal, Principal: "User:carol", Host: "*", Operation: acl.All, Permission: acl.Allow},
	})
	var denials int
	s, err := New(Config{ID: 1, DataDir: t.TempDir(), ZeroCopy: true, Authz: authz.New(a, func(context.Context, string, string) { denials++ }, slog.New(slog.DiscardHandler))},
		h.cache, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h.createTopic(t, "open", 1, 0)
	h.createTopic(t, "shut", 1, 0)
	h.reconcile(t, s)
	bob := wire.WithOrigin(context.Background(), wire.Origin{Principal: "User:bob", ClientAddr: "10.0.0.7:5000"})
	serve := func(ctx context.Context, body kmsg.Request, internal bool) kmsg.Response {
		t.Helper()
		resp, err := s.ServeKafka(ctx, &wire.Request{Header: wire.RequestHeader{Key: body.Key(), Version: body.GetVersion()}, Body: body, Internal: internal})
		if err != nil {
			t.Fatalf("%s: %v", kmsg.NameForKey(body.Key()), err)
		}
		return resp
	}
	codes := func(resp kmsg.Response) map[string]int16 {
		out := map[string]int16{}
		switch r := resp.(type) {
		case *kmsg.ProduceResponse:
			for _, t := range r.Topics {
				out[t.Topic] = t.Partitions[0].ErrorCode
			}
		case *wire.Spliced:
			for _, t := range r.Response.(*kmsg.FetchResponse).Topics {
				out[t.Topic] = t.Partitions[0].ErrorCode
			}
		case *kmsg.FetchResponse:
			for _, t := range r.Topics {
				out[t.Topic] = t.Partitions[0].ErrorCode
			}
		case *kmsg.ListOffsetsResponse:
			for _, t := range r.Topics {
				out[t.Topic] = t.Partitions[0].ErrorCode
			}
		case *kmsg.DeleteRecordsResponse:
			for _, t := range r.Topics {
				out[t.Topic] = t.Partitions[0].ErrorCode
			}
		}
		return out
	}
	produceReq := func(txn *string) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 9, 1, 5000, txn
		for _, topic := range []string{"open", "shut"} {
			req.Topics = append(req.Topics, kmsg.ProduceRequestTopic{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: makeBatch(1)}}})
		}
		return req
	}
	fetchReq := func(replica int32) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.ReplicaID, req.MaxBytes, req.SessionEpoch = 12, replica, 1<<20, 0
		for _, topic := range []string{"open", "shut"} {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 1<<20, -1, -1
			req.Topics = append(req.Topics, kmsg.FetchRequestTopic{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{rp}})
		}
		return req
	}
	listReq := kmsg.NewPtrListOffsetsRequest()
	listReq.Version, listReq.ReplicaID = 4, -1
	deleteReq := kmsg.NewPtrDeleteRecordsRequest()
	for _, topic := range []string{"open", "shut"} {
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp, p.CurrentLeaderEpoch = -1, -1
		listReq.Topics = append(listReq.Topics, kmsg.ListOffsetsRequestTopic{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{p}})
		deleteReq.Topics = append(deleteReq.Topics, kmsg.DeleteRecordsRequestTopic{Topic: topic, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 0}}})
	}
	const ok = 0
	topicDenied, txnDenied, clusterDenied := kerr.TopicAuthorizationFailed.Code, kerr.TransactionalIDAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Code
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		req      kmsg.Request
		internal bool
		want     map[string]int16
	}{
		{"produce", bob, produceReq(nil), false, map[string]int16{"open": ok, "shut": topicDenied}},
		{"transactional produce without the id's ACL", bob, produceReq(kmsg.StringPtr("bob-tx")), false, map[string]int16{"open": txnDenied, "shut": txnDenied}},
		{"fetch", bob, fetchReq(-1), false, map[string]int16{"open": ok, "shut": topicDenied}},
		{"a client posing as a follower", bob, fetchReq(2), false, map[string]int16{"open": topicDenied, "shut": topicDenied}},
		{"list offsets", bob, listReq, false, map[string]int16{"open": ok, "shut": topicDenied}},
		{"delete records", bob, deleteReq, false, map[string]int16{"open": ok, "shut": topicDenied}},
		{"forwarded by a proxy", bob, produceReq(nil), true, map[string]int16{"open": ok, "shut": ok}},
		{"from Strait itself", context.Background(), produceReq(nil), false, map[string]int16{"open": ok, "shut": ok}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := serve(tc.ctx, tc.req, tc.internal)
			if got := codes(resp); len(got) != len(tc.want) || got["open"] != tc.want["open"] || got["shut"] != tc.want["shut"] {
				t.Fatalf("error codes by topic %v, want %v", got, tc.want)
			}
			if sp, spliced := resp.(*wire.Spliced); spliced {
				resp = sp.Response
				sp.Release()
			}
			if f, isFetch := resp.(*kmsg.FetchResponse); isFetch && f.SessionID != 0 {
				t.Fatalf("a client's fetch opened session %d; want none, so every fetch is decided", f.SessionID)
			}
		})
	}

	markers := kmsg.NewPtrWriteTxnMarkersRequest()
	markers.Markers = []kmsg.WriteTxnMarkersRequestMarker{{ProducerID: 1, Topics: []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "open", Partitions: []int32{0}}}}}
	got := serve(bob, markers, false).(*kmsg.WriteTxnMarkersResponse)
	if code := got.Markers[0].Topics[0].Partitions[0].ErrorCode; code != clusterDenied {
		t.Fatalf("WriteTxnMarkers from a client: code %d, want CLUSTER_AUTHORIZATION_FAILED", code)
	}
	if denials == 0 {
		t.Fatal("no denial was counted")
	}
}
