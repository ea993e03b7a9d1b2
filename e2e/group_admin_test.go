package e2e

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupAdminKadm checks the group admin APIs as kadm (and so
// kafka-consumer-groups.sh) uses them:
//   - ListGroups lists the group with protocol type "consumer" and state
//     Stable, and its states filter (KIP-518) keeps it for "Stable" and
//     drops it for "Empty";
//   - DescribeGroups shows the member, its subscription and its assignment
//     of every partition;
//   - lag (DescribeGroups + OffsetFetch + ListOffsets, as kadm's Lag and
//     CalculateGroupLag compute it) equals produced minus committed per
//     partition, and is zero once everything is committed;
//   - DeleteGroups fails with NON_EMPTY_GROUP while the group has a
//     member, deletes it (offsets included) once it is Empty, and then
//     answers GROUP_ID_NOT_FOUND.
func TestGroupAdminKadm(t *testing.T) {
	const (
		topic      = "admin-topic"
		group      = "admin-group"
		partitions = 4
		n          = 400
		first      = 150
	)
	p := startGroupDev(t)
	adm := p.Admin(t)
	createTopic(t, adm, topic, partitions, groupTimeout)
	produceSpread(t, p, topic, partitions, n)

	cl := p.Client(t,
		kgo.ClientID("admin-consumer"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.Balancers(kgo.RangeBalancer()),
	)
	got := pollExactly(t, cl, first, groupTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 4*groupTimeout)
	defer cancel()
	if err := cl.CommitRecords(ctx, got...); err != nil {
		t.Fatalf("commit %d records: %v", first, err)
	}
	committed := perPartition(checkDenseOffsets(t, got), topic)

	// ListGroups, unfiltered and with state filters.
	d := waitGroupState(t, adm, group, "Stable", 1, groupTimeout)
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if l, ok := listed[group]; !ok || l.ProtocolType != "consumer" || l.State != "Stable" {
		t.Fatalf("ListGroups: %s listed=%v as %+v; want protocol type consumer, state Stable", group, ok, l)
	}
	if listed, err = adm.ListGroups(ctx, "Stable"); err != nil {
		t.Fatalf("ListGroups(Stable): %v", err)
	}
	if _, ok := listed[group]; !ok {
		t.Fatalf("ListGroups(Stable) does not list %s: %v", group, listed.Groups())
	}
	if listed, err = adm.ListGroups(ctx, "Empty"); err != nil {
		t.Fatalf("ListGroups(Empty): %v", err)
	}
	if _, ok := listed[group]; ok {
		t.Fatalf("ListGroups(Empty) lists %s, which is Stable", group)
	}

	// DescribeGroups: one member, subscribed to topic, assigned all of it.
	m := d.Members[0]
	if m.ClientID != "admin-consumer" || d.Protocol != "range" || d.ProtocolType != "consumer" {
		t.Fatalf("DescribeGroups: client id %q, protocol %q/%q; want admin-consumer, consumer/range", m.ClientID, d.ProtocolType, d.Protocol)
	}
	if meta, ok := m.Join.AsConsumer(); !ok || len(meta.Topics) != 1 || meta.Topics[0] != topic {
		t.Fatalf("DescribeGroups: member subscription %+v (consumer=%v), want [%s]", meta, ok, topic)
	}
	checkAssignedOnce(t, map[string][]int32{m.MemberID: memberAssignment(t, m, topic)}, partitions)

	// Lag before everything is consumed: end offset minus committed.
	end, err := endOffsets(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	checkLag(t, adm, group, topic, end, committed, n-first)

	// Consume and commit the rest: no lag.
	pollExactly(t, cl, n-first, groupTimeout)
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit the remaining %d records: %v", n-first, err)
	}
	checkLag(t, adm, group, topic, end, end, 0)

	// DeleteGroups: refused while the group has a member.
	deleted, err := adm.DeleteGroups(ctx, group)
	if err != nil {
		t.Fatalf("DeleteGroups: %v", err)
	}
	if err := deleted[group].Err; !errors.Is(err, kerr.NonEmptyGroup) {
		t.Fatalf("DeleteGroups on a group with a member: %v, want NON_EMPTY_GROUP", err)
	}
	checkCommittedAtEnd(t, adm, group, topic, groupTimeout)

	// Once the member leaves the group is Empty and can be deleted.
	cl.Close()
	waitGroupState(t, adm, group, "Empty", 0, groupTimeout)
	if deleted, err = adm.DeleteGroups(ctx, group); err != nil {
		t.Fatalf("DeleteGroups: %v", err)
	}
	if err := deleted[group].Err; err != nil {
		t.Fatalf("DeleteGroups on an Empty group: %v", err)
	}
	if listed, err = adm.ListGroups(ctx); err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if _, ok := listed[group]; ok {
		t.Fatalf("ListGroups still lists %s after it was deleted", group)
	}
	// Kafka answers OffsetFetch for an unknown group with no offsets; a
	// GROUP_ID_NOT_FOUND says the same.
	if left, err := committedOffsets(ctx, adm, group, topic); !errors.Is(err, kerr.GroupIDNotFound) && (err != nil || len(left) != 0) {
		t.Fatalf("after deleting %s: committed offsets %v (err %v), want none", group, sortedOffsets(left), err)
	}
	if deleted, err = adm.DeleteGroups(ctx, group); err != nil {
		t.Fatalf("DeleteGroups: %v", err)
	}
	if err := deleted[group].Err; !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatalf("DeleteGroups on a deleted group: %v, want GROUP_ID_NOT_FOUND", err)
	}
}

// checkLag checks group's lag on topic two ways, with kadm's Lag and with
// CalculateGroupLag over DescribeGroups, OffsetFetch and ListOffsets: per
// partition it is end minus committed (a partition without a commit lags
// by its whole end offset), and total in all.
func checkLag(t testing.TB, adm *kadm.Client, group, topic string, end, committed map[int32]int64, total int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		t.Fatalf("Lag: %v", err)
	}
	l, ok := lags[group]
	if !ok {
		t.Fatalf("Lag: no entry for %s", group)
	}
	if err := l.Error(); err != nil {
		t.Fatalf("Lag of %s: %v", group, err)
	}
	check := func(how string, lag kadm.GroupLag) {
		t.Helper()
		for p, e := range end {
			ml, ok := lag.Lookup(topic, p)
			if !ok {
				t.Fatalf("%s: no lag for %s", how, tp{topic, p})
			}
			if ml.Err != nil {
				t.Fatalf("%s: %s: %v", how, tp{topic, p}, ml.Err)
			}
			if want := e - committed[p]; ml.Lag != want {
				t.Fatalf("%s: %s lag %d (commit %d, end %d), want %d", how, tp{topic, p}, ml.Lag, ml.Commit.At, ml.End.Offset, want)
			}
			if ml.IsEmpty() {
				t.Fatalf("%s: %s has no member, but the group has one assigned", how, tp{topic, p})
			}
		}
		if got := lag.Total(); got != total {
			t.Fatalf("%s: total lag %d, want %d", how, got, total)
		}
	}
	check("kadm Lag", l.Lag)

	described, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = described.Error()
	}
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	fetched, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = fetched.Error()
	}
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	check("CalculateGroupLag", kadm.CalculateGroupLag(described[group], fetched, listed))
}
