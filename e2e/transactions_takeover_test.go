package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionsCoordinatorProxyKilled: the proxy that coordinates transactional ids
// (it holds their __transaction_state partition's lease) is SIGKILLed twice, on a
// cluster of redis-server, three nodes and two proxies (KIP-98: a coordinator that
// takes a __transaction_state partition over replays it and finishes what was prepared).
//
//  1. Transactions are open, their records produced, when the coordinator dies. After
//     the other proxy takes the lease over, one producer commits through it, another
//     aborts, and a third, abandoned, is aborted when its timeout passes.
//  2. EndTxn(commit) was accepted, its markers maybe not all written, when the
//     coordinator dies: the new one, loading PrepareCommit, writes them.
//
// After each, a read_committed consumer sees every committed transaction whole and
// nothing of the others, and the last stable offset of every partition reaches its high
// watermark: no partition is left behind an open transaction.
func TestTransactionsCoordinatorProxyKilled(t *testing.T) {
	const (
		topic      = "txn-takeover"
		partitions = 6
		perTxn     = 24
	)
	c := StartCluster(t, ClusterNodes(3), Proxies(2), NodeArgs(fastISR),
		ProxyArgs("--transaction-partitions=3", "--transaction-coordinator-lease-ttl=3s",
			"--transaction-abort-check-interval=300ms", "--group-initial-rebalance-delay=0s"))
	seeds := c.ProxyAddrs()
	adm := kadm.NewClient(newClient(t, seeds))
	createReplicatedTopic(t, adm, topic, partitions, 2, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	// Producers are seeded with the proxy that survives: franz-go gives an EndTxn up,
	// rather than retry it, when a FindCoordinator it sends for it meets a dead seed
	// connection. (Metadata still shows them both proxies, so they write through both.)
	var survivor int
	producer := func(id string, opts ...kgo.Opt) *kgo.Client {
		return newClient(t, []string{c.Proxies[survivor].Addr()}, append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			// Retries span the coordinator's takeover (a 3 s lease) and the dead proxy's Metadata lease.
			kgo.RetryBackoffFn(func(int) time.Duration { return 200 * time.Millisecond }), kgo.RequestRetries(150)}, opts...)...)
	}
	// produce opens a transaction and writes perTxn records over every partition.
	produce := func(cl *kgo.Client, prefix string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("%s: begin: %v", prefix, err)
		}
		for i := range perTxn {
			r := &kgo.Record{Value: fmt.Appendf(nil, "%s-%02d", prefix, i), Partition: int32(i % partitions)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("%s: produce: %v", prefix, err)
			}
		}
	}
	var committed []string
	expectCommitted := func(prefix string) {
		for i := range perTxn {
			committed = append(committed, fmt.Sprintf("%s-%02d", prefix, i))
		}
		sort.Strings(committed)
	}

	// Phase 1: open transactions when their coordinator dies.
	victim := coordinatorOf(t, ctx, adm, c, "open-commit")
	ids := idsCoordinatedBy(t, ctx, adm, c, victim, "open-commit", "open-abort", "open-abandoned")
	survivor = 1 - victim
	committer, aborter := producer(ids[0]), producer(ids[1])
	abandoned := producer(ids[2], kgo.TransactionTimeout(4*time.Second))
	produce(committer, "committed")
	produce(aborter, "aborted")
	produce(abandoned, "abandoned")
	killed := time.Now()
	c.Proxies[victim].Kill()
	t.Logf("killed %s, coordinator of %v, with their transactions open", c.Proxies[victim].Name(), ids)
	awaitTakeover(t, ctx, c, survivor, ids)
	t.Logf("%s took over after %v", c.Proxies[survivor].Name(), time.Since(killed).Round(time.Millisecond))
	if err := committer.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit through the new coordinator: %v", err)
	}
	expectCommitted("committed")
	if err := aborter.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("abort through the new coordinator: %v", err)
	}
	t.Logf("commit and abort went through %v after the kill", time.Since(killed).Round(time.Millisecond))
	expectStable(t, ctx, c.Proxies[survivor], topic, committed)

	// Phase 2: EndTxn(commit) accepted, then the coordinator dies at once.
	c.Proxies[victim].Restart(t)
	victim, survivor = survivor, victim
	id := idsCoordinatedBy(t, ctx, adm, c, victim, "prepared-commit")[0]
	late := producer(id)
	produce(late, "prepared")
	if err := late.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	c.Proxies[victim].Kill()
	t.Logf("killed %s right after it accepted the commit of %s", c.Proxies[victim].Name(), id)
	expectCommitted("prepared")
	expectStable(t, ctx, c.Proxies[survivor], topic, committed)
	finished := slices.ContainsFunc(strings.Split(c.Proxies[survivor].Log(), "\n"), func(line string) bool {
		return strings.Contains(line, "finishing a transaction its previous coordinator prepared") &&
			strings.Contains(line, "transactional_id="+id+" ") && strings.Contains(line, "commit=true")
	})
	if !finished {
		t.Errorf("%s did not finish the prepared commit of %s after loading it: were its markers all written before the kill?", c.Proxies[survivor].Name(), id)
	}
}

// coordinatorOf returns the index in c.Proxies of the proxy coordinating a transactional id.
func coordinatorOf(t *testing.T, ctx context.Context, adm *kadm.Client, c *Cluster, id string) int {
	t.Helper()
	var at int
	Eventually(t, 20*time.Second, func(context.Context) error {
		r := adm.FindTxnCoordinators(ctx, id)[id]
		if r.Err != nil {
			return r.Err
		}
		addr := net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))
		at = slices.IndexFunc(c.Proxies, func(p *Process) bool { return p.Addr() == addr && p.Running() })
		if at < 0 {
			return fmt.Errorf("coordinator of %s is %s, no running proxy", id, addr)
		}
		return nil
	})
	return at
}

// awaitTakeover waits until proxy survivor coordinates ids.
func awaitTakeover(t *testing.T, ctx context.Context, c *Cluster, survivor int, ids []string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, []string{c.Proxies[survivor].Addr()}))
	Eventually(t, 25*time.Second, func(context.Context) error {
		for id, r := range adm.FindTxnCoordinators(ctx, ids...) {
			if r.Err != nil {
				return fmt.Errorf("coordinator of %s: %w", id, r.Err)
			}
			if addr := net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port))); addr != c.Proxies[survivor].Addr() {
				return fmt.Errorf("coordinator of %s is still %s", id, addr)
			}
		}
		return nil
	})
}

// idsCoordinatedBy returns, for each prefix, a transactional id starting with it whose
// coordinator is proxy want.
func idsCoordinatedBy(t *testing.T, ctx context.Context, adm *kadm.Client, c *Cluster, want int, prefixes ...string) []string {
	t.Helper()
	var out []string
	for _, prefix := range prefixes {
		found := ""
		for i := 0; i < 50 && found == ""; i++ {
			if id := fmt.Sprintf("%s-%d", prefix, i); coordinatorOf(t, ctx, adm, c, id) == want {
				found = id
			}
		}
		if found == "" {
			t.Fatalf("no transactional id %s-N is coordinated by %s", prefix, c.Proxies[want].Name())
		}
		out = append(out, found)
	}
	return out
}

// expectStable waits until every partition's last stable offset reached its high
// watermark, then checks that a read_committed consumer through p reads exactly want.
func expectStable(t *testing.T, ctx context.Context, p *Process, topic string, want []string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, []string{p.Addr()}))
	Eventually(t, 30*time.Second, func(context.Context) error {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return err
		}
		stable, err := adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = stable.Error()
		}
		if err != nil {
			return err
		}
		var behind []string
		ends.Each(func(o kadm.ListedOffset) {
			if s, _ := stable.Lookup(topic, o.Partition); s.Offset != o.Offset {
				behind = append(behind, fmt.Sprintf("partition %d: LSO %d, high watermark %d", o.Partition, s.Offset, o.Offset))
			}
		})
		if len(behind) > 0 {
			return fmt.Errorf("held behind open transactions: %v", behind)
		}
		return nil
	})
	got := readValues(t, p, topic, true, 3*time.Second)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		dups, missing := diffCounts(want, got)
		var extra []string
		for _, v := range got {
			if !slices.Contains(want, v) {
				extra = append(extra, v)
			}
		}
		t.Fatalf("read_committed reads %d records, want %d: duplicated %v, missing %v, not committed %v", len(got), len(want), dups, missing, extra)
	}
	all := readValues(t, p, topic, false, 2*time.Second)
	t.Logf("read_committed reads the %d committed records; read_uncommitted %d", len(got), len(all))
}
