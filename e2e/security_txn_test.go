package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSecurityTransactionalACLs: a transactional producer needs WRITE on its
// transactional id as well as on its topics, as in Kafka. Without the id's ACL
// InitProducerId is TRANSACTIONAL_ID_AUTHORIZATION_FAILED; with a prefixed ACL granted
// by kadm the transaction commits and a read_committed reader sees it; a client sending
// WriteTxnMarkers itself gets CLUSTER_AUTHORIZATION_FAILED; an offset commit for a topic
// the principal may not read is TOPIC_AUTHORIZATION_FAILED; ListTransactions shows only
// the ids the principal may describe.
func TestSecurityTransactionalACLs(t *testing.T) {
	p := newPKI(t)
	addr := startSecureDev(t, p)
	const topic = "secure-txn"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	alice := scramClient(t, p, addr, "alice", "alice-secret")
	adm := kadm.NewClient(alice)
	createTopic(t, adm, topic, 1, 30*time.Second)
	grant := func(b *kadm.ACLBuilder) {
		t.Helper()
		results, err := adm.CreateACLs(ctx, b)
		if err != nil {
			t.Fatalf("create ACLs: %v", err)
		}
		for _, r := range results {
			if r.Err != nil {
				t.Fatalf("create ACL: %v", r.Err)
			}
		}
	}
	grant(kadm.NewACLs().Allow("User:bob").Topics(topic).Operations(kadm.OpWrite, kadm.OpDescribe))

	bob := func() *kgo.Client {
		return scramClient(t, p, addr, "bob", "bob-secret", kgo.TransactionalID("bob-tx-1"), kgo.DefaultProduceTopic(topic))
	}
	// franz-go asks for its producer id as it starts; the refusal surfaces at the
	// first transaction or the first record.
	denied := bob()
	err := denied.BeginTransaction()
	if err == nil {
		err = denied.ProduceSync(ctx, kgo.StringRecord("refused")).FirstErr()
	}
	if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("produce without an ACL on the transactional id: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}

	grant(kadm.NewACLs().Allow("User:bob").ResourcePatternType(kadm.ACLPatternPrefixed).
		TransactionalIDs("bob-tx-").Operations(kadm.OpWrite, kadm.OpDescribe))
	allowed := bob()
	if err := allowed.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"one", "two"} {
		if err := allowed.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatalf("transactional produce with the ACL: %v", err)
		}
	}
	if err := allowed.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}

	reader := scramClient(t, p, addr, "alice", "alice-secret", kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	consumeAll(t, reader, 2, 20*time.Second)

	markers := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = 1, 0, false
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: topic, Partitions: []int32{0}}}
	markers.Markers = []kmsg.WriteTxnMarkersRequestMarker{m}
	resp, err := markers.RequestWith(ctx, allowed)
	if err != nil {
		t.Fatalf("WriteTxnMarkers: %v", err)
	}
	if code := resp.Markers[0].Topics[0].Partitions[0].ErrorCode; code != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("WriteTxnMarkers from a client: %v, want CLUSTER_AUTHORIZATION_FAILED", kerr.ErrorForCode(code))
	}

	// bob may use his group but not read the topic: his commit of its offsets is refused
	// per partition.
	grant(kadm.NewACLs().Allow("User:bob").Groups("bob-g").Operations(kadm.OpRead))
	var offsets kadm.Offsets
	offsets.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
	committed, err := kadm.NewClient(allowed).CommitOffsets(ctx, "bob-g", offsets)
	if err != nil {
		t.Fatalf("OffsetCommit: %v", err)
	}
	if err := committed.Error(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("OffsetCommit without READ on the topic: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// carol may describe nothing: she lists no transactions, where alice sees bob's.
	carol := scramClient(t, p, addr, "carol", "carol-secret")
	for _, c := range []struct {
		cl   *kgo.Client
		want int
	}{{alice, 1}, {carol, 0}} {
		list, err := kmsg.NewPtrListTransactionsRequest().RequestWith(ctx, c.cl)
		if err != nil {
			t.Fatalf("ListTransactions: %v", err)
		}
		n := 0
		for _, st := range list.TransactionStates {
			if st.TransactionalID == "bob-tx-1" {
				n++
			}
		}
		if n != c.want {
			t.Fatalf("ListTransactions shows bob-tx-1 %d times, want %d: %+v", n, c.want, list.TransactionStates)
		}
	}
}
