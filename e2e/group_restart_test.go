package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupResumeAfterRestart checks that committed offsets are durable
// (Kafka keeps them in __consumer_offsets; docs/architecture.md invariant 4): a group
// consumes and commits 600 of 1,000 records, the process restarts on the
// same data directory, and a new member of the group starts exactly at
// the committed offsets and reads the other 400, none of the first 600
// again. Once after a clean stop (SIGTERM) and once after a crash
// (SIGKILL): an acknowledged OffsetCommit survives both.
func TestGroupResumeAfterRestart(t *testing.T) {
	t.Run("SIGTERM", func(t *testing.T) { testGroupResume(t, false) })
	t.Run("SIGKILL", func(t *testing.T) { testGroupResume(t, true) })
}

func testGroupResume(t *testing.T, crash bool) {
	const (
		topic      = "resume-topic"
		group      = "resume-group"
		partitions = 4
		n          = 1_000
		first      = 600
	)
	p := startGroupDev(t)
	adm := p.Admin(t)
	createTopic(t, adm, topic, partitions, groupTimeout)
	acked := produceSpread(t, p, topic, partitions, n)

	consumer := func() *kgo.Client {
		return p.Client(t,
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.Balancers(kgo.RangeBalancer()),
		)
	}

	c1 := consumer()
	got1 := pollExactly(t, c1, first, groupTimeout)
	start := perPartition(checkDenseOffsets(t, got1), topic) // the next offset per partition
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	if err := c1.CommitRecords(ctx, got1...); err != nil {
		t.Fatalf("commit %d records: %v", first, err)
	}
	// Only partitions consumed from have a commit; the rest start at 0.
	waitCommitted(t, adm, group, topic, start, groupTimeout)
	c1.Close() // LeaveGroup; with autocommit off, Close commits nothing

	if crash {
		p.Kill()
	} else {
		p.Stop()
	}
	p.Restart(t)
	waitCommitted(t, adm, group, topic, start, groupTimeout)

	c2 := consumer()
	got2 := pollExactly(t, c2, n-first, groupTimeout)
	seen := make(map[int32]bool)
	next := make(map[int32]int64)
	for _, r := range got2 {
		if !seen[r.Partition] {
			seen[r.Partition] = true
			if r.Offset != start[r.Partition] {
				t.Fatalf("partition %d: the new member started at offset %d, want the committed offset %d", r.Partition, r.Offset, start[r.Partition])
			}
			next[r.Partition] = r.Offset
		}
		if r.Offset != next[r.Partition] {
			t.Fatalf("partition %d: offset %d after %d; want dense offsets", r.Partition, r.Offset, next[r.Partition]-1)
		}
		next[r.Partition]++
	}
	checkSameRecords(t, acked, append(got1, got2...))

	ctx, cancel = context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	if err := c2.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit the remaining %d records: %v", n-first, err)
	}
	checkCommittedAtEnd(t, adm, group, topic, groupTimeout)
}

// pollExactly polls cl until it has exactly n records (it never asks for
// more than it still needs), failing the test on a fetch error or after
// timeout.
func pollExactly(t testing.TB, cl *kgo.Client, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	recs := make([]*kgo.Record, 0, n)
	for len(recs) < n {
		fetches := cl.PollRecords(ctx, n-len(recs))
		if ctx.Err() != nil {
			t.Fatalf("poll: got %d of %d records within %v", len(recs), n, timeout)
		}
		if err := fetches.Err(); err != nil {
			t.Fatalf("poll: after %d records: %v", len(recs), err)
		}
		recs = append(recs, fetches.Records()...)
	}
	if len(recs) != n {
		t.Fatalf("poll: got %d records, asked for at most %d", len(recs), n)
	}
	return recs
}

// waitCommitted polls until group's committed offsets for topic are
// exactly want (partitions absent from want have no commit), failing the
// test after timeout.
func waitCommitted(t testing.TB, adm *kadm.Client, group, topic string, want map[int32]int64, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got map[int32]int64
	err := pollUntil(ctx, nil, func(ctx context.Context) error {
		var err error
		if got, err = committedOffsets(ctx, adm, group, topic); err != nil {
			return err
		}
		if len(got) != len(want) {
			return fmt.Errorf("committed %v", sortedOffsets(got))
		}
		for p, o := range want {
			if got[p] != o {
				return fmt.Errorf("committed %v", sortedOffsets(got))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("group %s: committed offsets of %s are %v, want %v: %v", group, topic, sortedOffsets(got), sortedOffsets(want), err)
	}
}
