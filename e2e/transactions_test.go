package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Transactions end to end (KIP-98): real clients, real processes, real kills.

// txnDev starts strait dev with quick transaction timeouts checks, and creates topics.
func txnDev(t *testing.T, nodes int, topics map[string]int32, extra ...string) *Process {
	t.Helper()
	args := append([]string{"--transaction-abort-check-interval", "500ms", "--group-initial-rebalance-delay", "0s"}, extra...)
	p := StartDev(t, Nodes(nodes), Args(args...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := p.Admin(t)
	for topic, partitions := range topics {
		resp, err := adm.CreateTopic(ctx, partitions, int16(min(nodes, 3)), nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
	}
	return p
}

// readValues reads every record of topic at isolation from the start until quiet for
// idle, and returns their values.
func readValues(t *testing.T, p *Process, topic string, committed bool, idle time.Duration) []string {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := p.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	defer cl.Close()
	var out []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, string(r.Value))
			n++
		})
		if n == 0 {
			return out
		}
	}
}

// TestTransactionsAbortTimeoutAndZombie: a transaction aborted by its producer, and one
// aborted by the coordinator once past its timeout, are invisible to read_committed
// consumers and visible to read_uncommitted ones; a zombie producer, fenced by a new
// producer of its transactional id (a bumped epoch), can commit nothing, and its open
// transaction is aborted (KIP-98).
func TestTransactionsAbortTimeoutAndZombie(t *testing.T) {
	const topic = "txn-abort"
	p := txnDev(t, 1, map[string]int32{topic: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	producer := func(id string, opts ...kgo.Opt) *kgo.Client {
		return p.Client(t, append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic)}, opts...)...)
	}
	txn := func(cl *kgo.Client, commit kgo.TransactionEndTry, values ...string) error {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		for _, v := range values {
			if err := cl.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				return err
			}
		}
		return cl.EndTransaction(ctx, commit)
	}

	if err := txn(producer("committer"), kgo.TryCommit, "committed-1", "committed-2"); err != nil {
		t.Fatalf("committed transaction: %v", err)
	}
	if err := txn(producer("aborter"), kgo.TryAbort, "aborted-1", "aborted-2"); err != nil {
		t.Fatalf("aborted transaction: %v", err)
	}

	// Past its timeout: the coordinator aborts it and bumps the epoch, so the late commit fails.
	slow := producer("slow", kgo.TransactionTimeout(2*time.Second))
	if err := slow.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := slow.ProduceSync(ctx, kgo.StringRecord("timed-out")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if err := slow.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Errorf("commit of a transaction aborted by its timeout succeeded")
	}

	// A zombie: its transactional id is taken over while its transaction is open.
	zombie := producer("zombie")
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, kgo.StringRecord("zombie-write")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	successor := producer("zombie")
	if err := txn(successor, kgo.TryCommit, "successor-write"); err != nil {
		t.Fatalf("successor's transaction: %v", err)
	}
	zerr := zombie.ProduceSync(ctx, kgo.StringRecord("zombie-late")).FirstErr()
	if zerr == nil {
		zerr = zombie.EndTransaction(ctx, kgo.TryCommit)
	}
	if zerr == nil {
		t.Errorf("the zombie committed after a new producer fenced it")
	} else {
		t.Logf("zombie refused: %v", zerr)
	}

	committed := readValues(t, p, topic, true, 3*time.Second)
	sort.Strings(committed)
	if want := []string{"committed-1", "committed-2", "successor-write"}; !slices.Equal(committed, want) {
		t.Errorf("read_committed sees %v, want %v", committed, want)
	}
	all := readValues(t, p, topic, false, 3*time.Second)
	for _, v := range []string{"aborted-1", "aborted-2", "timed-out", "zombie-write"} {
		if !slices.Contains(all, v) {
			t.Errorf("read_uncommitted misses aborted %q: %v", v, all)
		}
	}
}

// confluentTxnPy runs two transactions with confluent-kafka (librdkafka): one committed,
// one aborted; then reads the topic read_committed and prints each value.
const confluentTxnPy = `
import sys
from confluent_kafka import Producer, Consumer

bootstrap, topic = sys.argv[1:3]
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "py-txn", "client.id": "confluent-python"})
p.init_transactions(30)
p.begin_transaction()
for i in range(5):
    p.produce(topic, value=("py-committed-%d" % i).encode())
p.commit_transaction(30)
p.begin_transaction()
for i in range(5):
    p.produce(topic, value=("py-aborted-%d" % i).encode())
p.flush(30)
p.abort_transaction(30)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "py-reader", "auto.offset.reset": "earliest",
              "isolation.level": "read_committed", "enable.auto.commit": False})
c.subscribe([topic])
seen, idle = 0, 0
while idle < 20:
    msgs = c.consume(num_messages=100, timeout=0.5)
    if not msgs:
        idle += 1
        continue
    idle = 0
    for m in msgs:
        if m.error():
            print("error", m.error(), file=sys.stderr)
            sys.exit(2)
        print(m.value().decode(), flush=True)
c.close()
`

// TestTransactionsConfluentPython: librdkafka's transactional producer and read_committed
// consumer against Strait: the committed transaction's records are read, the aborted
// one's are not (KIP-98), and a franz-go read_uncommitted reader sees both.
func TestTransactionsConfluentPython(t *testing.T) {
	if _, err := os.Stat(systemPython); err != nil {
		t.Skipf("no %s: %v", systemPython, err)
	}
	if err := exec.Command(systemPython, "-c", "import confluent_kafka").Run(); err != nil {
		t.Skipf("python3-confluent-kafka is not installed: %v", err)
	}
	const topic = "txn-python"
	p := txnDev(t, 1, map[string]int32{topic: 1})
	script := filepath.Join(t.TempDir(), "txn.py")
	if err := os.WriteFile(script, []byte(confluentTxnPy), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, systemPython, script, p.Addr(), topic).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "py-") {
			got = append(got, l)
		}
	}
	sort.Strings(got)
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("py-committed-%d", i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("read_committed (librdkafka) read %v, want %v\n%s", got, want, out)
	}
	if all := readValues(t, p, topic, false, 3*time.Second); !slices.Contains(all, "py-aborted-0") {
		t.Errorf("read_uncommitted misses the aborted records: %v", all)
	}
}

// buildMember builds testdata/txnmember, the chain's member program, once per run.
var buildMember = sync.OnceValues(func() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "strait-txn-member")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "txnmember")
	return bin, buildGo(root, "./e2e/testdata/txnmember", bin)
})

// TestTransactionsExactlyOnceChain: three GroupTransactSession members consume topic A
// and produce every record to topic B, committing their offsets in the same transactions
// (KIP-98, KIP-447). One member is SIGKILLed midway, with a transaction open, and
// restarted with the same transactional id, which fences its former self and aborts what
// it left. B holds every record of A exactly once under read_committed.
func TestTransactionsExactlyOnceChain(t *testing.T) {
	const (
		in, out, group = "chain-a", "chain-b", "chain"
		n              = 600
	)
	bin, err := buildMember()
	if err != nil {
		t.Fatalf("build the member program: %v", err)
	}
	p := txnDev(t, 3, map[string]int32{in: 6, out: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	src := p.Client(t, kgo.DefaultProduceTopic(in))
	var want []string
	for i := range n {
		v := fmt.Sprintf("rec-%04d", i)
		want = append(want, v)
		if err := src.ProduceSync(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", in, err)
		}
	}
	members := make([]*Process, 3)
	for i := range members {
		members[i] = startProcess(t, Spec{
			Name: fmt.Sprintf("member-%d", i), Path: bin,
			Args:  []string{p.Addr(), group, fmt.Sprintf("chain-txn-%d", i), in, out},
			Ready: func(context.Context) error { return nil },
		})
	}
	// Kill member 1 once it has committed some transactions, then bring it back.
	waitFor(t, 60*time.Second, "member 1 is midway", func() bool {
		return strings.Contains(members[1].Log(), "committed 60\n")
	})
	if err := members[1].StopWith(syscall.SIGKILL, 5*time.Second); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Logf("kill member 1: %v", err)
	}
	time.Sleep(2 * time.Second)
	members[1].Restart(t)

	var got []string
	waitFor(t, 150*time.Second, "B holds every record of A under read_committed", func() bool {
		got = readValues(t, p, out, true, 2*time.Second)
		return len(got) >= n
	})
	time.Sleep(3 * time.Second) // anything the members still commit would be a duplicate
	got = readValues(t, p, out, true, 3*time.Second)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		dups, missing := diffCounts(want, got)
		t.Fatalf("B under read_committed: %d records, want %d exactly once; duplicated %v, missing %v", len(got), n, dups, missing)
	}
	all := readValues(t, p, out, false, 3*time.Second)
	t.Logf("B holds %d records read_uncommitted (aborted included), %d committed", len(all), len(got))
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(500 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", d, what)
		}
	}
}

// diffCounts lists the values of got seen more than once, and those of want never seen.
func diffCounts(want, got []string) (dups, missing []string) {
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	for v, c := range seen {
		if c > 1 {
			dups = append(dups, v)
		}
	}
	for _, v := range want {
		if seen[v] == 0 {
			missing = append(missing, v)
		}
	}
	sort.Strings(dups)
	return dups, missing
}
