package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tp names one partition.
type tp struct {
	topic     string
	partition int32
}

func (p tp) String() string { return fmt.Sprintf("%s/%d", p.topic, p.partition) }

// produceAll produces recs asynchronously and waits for every
// acknowledgement; it fails the test if any produce fails or if they are
// not all acknowledged within timeout. On return each record carries the
// partition and offset the broker acknowledged.
func produceAll(t testing.TB, cl *kgo.Client, recs []*kgo.Record, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
		first  error
	)
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			failed++
			if first == nil {
				first = fmt.Errorf("record key=%q value=%q: %w", r.Key, r.Value, err)
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		t.Fatalf("produce: %d of %d records failed; first: %v", failed, len(recs), first)
	}
}

// consumeAll polls cl until it has n records, and fails the test on a
// fetch error or if n records do not arrive within timeout. It does not
// wait for more than n: callers that must rule out extra records compare
// end offsets (checkEndOffsets).
func consumeAll(t testing.TB, cl *kgo.Client, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	recs := make([]*kgo.Record, 0, n)
	for len(recs) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume: got %d of %d records within %v", len(recs), n, timeout)
		}
		var errs []error
		fetches.EachError(func(topic string, partition int32, err error) {
			errs = append(errs, fmt.Errorf("%s: %w", tp{topic, partition}, err))
		})
		if len(errs) > 0 {
			t.Fatalf("consume: after %d records: %v", len(recs), errors.Join(errs...))
		}
		recs = append(recs, fetches.Records()...)
	}
	return recs
}

// checkDenseOffsets checks that, for each partition, the records appear
// in consumption order at offsets 0, 1, 2, ... with no gap or repeat
// (Kafka: offsets within a partition are dense and increasing). It returns
// the number of records per partition.
func checkDenseOffsets(t testing.TB, recs []*kgo.Record) map[tp]int64 {
	t.Helper()
	next := make(map[tp]int64)
	for _, r := range recs {
		k := tp{r.Topic, r.Partition}
		if r.Offset != next[k] {
			t.Fatalf("%s: got offset %d, want %d (offsets must be dense from 0 and in order)", k, r.Offset, next[k])
		}
		next[k]++
	}
	return next
}

// checkSameRecords checks that got holds exactly the records of want, each
// at the partition and offset want's acknowledgement gave, with the same key
// and value: every reader sees the same record at the same offset.
func checkSameRecords(t testing.TB, want, got []*kgo.Record) {
	t.Helper()
	type pos struct {
		tp
		offset int64
	}
	at := make(map[pos]*kgo.Record, len(got))
	for _, r := range got {
		p := pos{tp{r.Topic, r.Partition}, r.Offset}
		if _, dup := at[p]; dup {
			t.Fatalf("%s offset %d read twice", p.tp, p.offset)
		}
		at[p] = r
	}
	for _, w := range want {
		p := pos{tp{w.Topic, w.Partition}, w.Offset}
		g, ok := at[p]
		if !ok {
			t.Fatalf("acknowledged record key=%q value=%q at %s offset %d was not read", w.Key, w.Value, p.tp, p.offset)
		}
		if string(g.Key) != string(w.Key) || string(g.Value) != string(w.Value) {
			t.Fatalf("%s offset %d: read key=%q value=%q, acknowledged key=%q value=%q",
				p.tp, p.offset, g.Key, g.Value, w.Key, w.Value)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, acknowledged %d", len(got), len(want))
	}
}

// checkEndOffsets checks that each partition of topic has exactly the end
// offset (high watermark) in want; partitions missing from want must be
// empty, and every partition in want must exist.
func checkEndOffsets(t testing.TB, adm *kadm.Client, topic string, want map[int32]int64, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	offs, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	got := make(map[int32]int64)
	offs.Each(func(o kadm.ListedOffset) { got[o.Partition] = o.Offset })
	ok := true
	for p, o := range got {
		ok = ok && o == want[p] // a partition missing from want must be empty
	}
	for p := range want {
		_, listed := got[p]
		ok = ok && listed
	}
	if !ok {
		t.Fatalf("end offsets of %s: got %v, want %v", topic, sortedOffsets(got), sortedOffsets(want))
	}
}

// checkPartitions checks that topic exists with n partitions.
func checkPartitions(t testing.TB, adm *kadm.Client, topic string, n int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	details, err := adm.ListTopics(ctx, topic)
	if err == nil {
		err = details.Error()
	}
	if err != nil {
		t.Fatalf("list topic %s: %v", topic, err)
	}
	d, ok := details[topic]
	if !ok {
		t.Fatalf("topic %s not listed", topic)
	}
	if len(d.Partitions) != n {
		t.Fatalf("topic %s has %d partitions, want %d", topic, len(d.Partitions), n)
	}
}

// perPartition counts records per partition of one topic.
func perPartition(counts map[tp]int64, topic string) map[int32]int64 {
	out := make(map[int32]int64)
	for k, n := range counts {
		if k.topic == topic {
			out[k.partition] = n
		}
	}
	return out
}

// sortedOffsets renders a partition → offset map in partition order.
func sortedOffsets(m map[int32]int64) []string {
	parts := make([]int32, 0, len(m))
	for p := range m {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = fmt.Sprintf("%d:%d", p, m[p])
	}
	return out
}

// createTopic creates topic with the given number of partitions and
// replication factor 1, failing the test on any error.
func createTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, err, resp.ErrMessage)
	}
}

// committedOffsets returns the offsets group has committed for topic, by
// partition (OffsetFetch); partitions without a commit are left out.
func committedOffsets(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	offs, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	got := make(map[int32]int64)
	for p, o := range offs[topic] {
		if o.At >= 0 {
			got[p] = o.At
		}
	}
	return got, nil
}

// endOffsets returns the end offsets (high watermarks) of topic by
// partition (ListOffsets).
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	offs, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	got := make(map[int32]int64)
	offs.Each(func(o kadm.ListedOffset) { got[o.Partition] = o.Offset })
	return got, nil
}

// checkCommittedAtEnd polls until group's committed offsets for every
// partition of topic equal the partition's end offset (a group that has
// consumed and committed everything has no lag; an empty partition needs no
// commit), and fails the test if that does not happen within timeout.
func checkCommittedAtEnd(t testing.TB, adm *kadm.Client, group, topic string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var committed, end map[int32]int64
	err := pollUntil(ctx, nil, func(ctx context.Context) error {
		var err error
		if end, err = endOffsets(ctx, adm, topic); err != nil {
			return err
		}
		if committed, err = committedOffsets(ctx, adm, group, topic); err != nil {
			return err
		}
		if len(end) == 0 {
			return fmt.Errorf("topic %s has no partitions", topic)
		}
		for p, o := range end {
			c, ok := committed[p]
			if !ok && o == 0 {
				continue // nothing in it, nothing to commit: no lag, as Kafka counts it
			}
			if !ok || c != o {
				return fmt.Errorf("partition %d: committed %v, end offset %d", p, committedString(committed, p), o)
			}
		}
		return nil
	})
	for p, o := range end {
		if o == 0 {
			t.Logf("group %s on %s: partition %d holds no record", group, topic, p)
		}
	}
	if err != nil {
		t.Fatalf("group %s on %s: committed offsets %v never equalled end offsets %v: %v; the group now: %s",
			group, topic, sortedOffsets(committed), sortedOffsets(end), err, describeGroup(adm, group))
	}
}

// describeGroup renders group's state and each member's assignment, for a failure
// message: a partition no member holds is never committed.
func describeGroup(adm *kadm.Client, group string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Sprintf("(describe failed: %v)", err)
	}
	g := described[group]
	if g.Err != nil {
		return fmt.Sprintf("(describe failed: %v)", g.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state %s, coordinator %d, %d members:", g.State, g.Coordinator.NodeID, len(g.Members))
	for _, m := range g.Members {
		assigned := "?"
		if c, ok := m.Assigned.AsConsumer(); ok {
			var parts []string
			for _, t := range c.Topics {
				parts = append(parts, fmt.Sprintf("%s%v", t.Topic, t.Partitions))
			}
			assigned = strings.Join(parts, " ")
		}
		fmt.Fprintf(&b, " [%s %s: %s]", m.ClientID, m.MemberID, assigned)
	}
	return b.String()
}

func committedString(m map[int32]int64, p int32) string {
	if c, ok := m[p]; ok {
		return fmt.Sprint(c)
	}
	return "nothing"
}
