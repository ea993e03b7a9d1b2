package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// systemPython is Debian's interpreter, which sees Debian's
// python3-confluent-kafka whatever python3 comes first on PATH.
const systemPython = "/usr/bin/python3"

// confluentConsumerPy consumes topic as a member of group (confluent-kafka,
// that is librdkafka's KafkaConsumer), prints "<partition> <offset>" per
// record, commits synchronously after each batch it has printed, and on
// SIGTERM closes the consumer (LeaveGroup) and exits 0.
const confluentConsumerPy = `
import signal
import sys

from confluent_kafka import Consumer, KafkaException

bootstrap, group, topic = sys.argv[1:4]
running = True


def stop(signum, frame):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
c = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "client.id": "confluent-python",
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
})
c.subscribe([topic])
while running:
    msgs = c.consume(num_messages=500, timeout=0.2)
    for m in msgs:
        if m.error():
            print("consume error:", m.error(), file=sys.stderr, flush=True)
            sys.exit(2)
        print(m.partition(), m.offset())
    if msgs:
        sys.stdout.flush()
        try:
            c.commit(asynchronous=False)
        except KafkaException as e:
            # Refused around a rebalance; the next owner re-reads.
            print("commit failed:", e, file=sys.stderr, flush=True)
c.close()
`

// TestGroupKcatAndConfluentPython checks that two librdkafka-based
// consumers — kcat in balanced-consumer mode (-G) and a Python
// confluent-kafka Consumer — share a 4-partition topic as members of one
// classic group: both are assigned partitions (each consumes records),
// together they consume every record, and the group's committed offsets
// end at the topic's end offsets, also after both have left.
//
// It keeps Kafka's default group.initial.rebalance.delay.ms (3s): the
// delay is what lets the second member join the first generation, as it
// does against Kafka, instead of finding the first one done.
func TestGroupKcatAndConfluentPython(t *testing.T) {
	const (
		topic      = "tools-topic"
		group      = "tools-group"
		partitions = 4
		n          = 1_000
	)
	kcat := requireTool(t, "kcat")
	requirePythonModule(t, "confluent_kafka")
	logToolVersions(t, kcat)

	p := StartDev(t) // default --group-initial-rebalance-delay
	requireAPIs(t, p, classicGroupAPIs...)
	adm := p.Admin(t)
	createTopic(t, adm, topic, partitions, groupTimeout)
	acked := produceSpread(t, p, topic, partitions, n)
	end := make(map[int32]int64)
	for _, r := range acked {
		end[r.Partition] = max(end[r.Partition], r.Offset+1)
	}

	script := filepath.Join(t.TempDir(), "consumer.py")
	if err := os.WriteFile(script, []byte(confluentConsumerPy), 0o644); err != nil {
		t.Fatal(err)
	}
	union := newPositionSet()
	kc := startToolConsumer(t, "kcat", union, kcat,
		"-b", p.Addr(), "-G", group, "-q", "-u",
		"-X", "client.id=kcat",
		"-X", "auto.offset.reset=earliest",
		"-X", "auto.commit.interval.ms=100",
		"-f", `%p %o\n`,
		topic)
	py := startToolConsumer(t, "python", union, systemPython, script, p.Addr(), group, topic)

	ctx, cancel := context.WithTimeout(context.Background(), 2*groupTimeout)
	defer cancel()
	err := pollUntil(ctx, nil, func(context.Context) error {
		for _, c := range []*toolConsumer{kc, py} {
			if err := c.exited(); err != nil {
				return err
			}
		}
		if got := union.len(); got < n {
			return fmt.Errorf("%d of %d records consumed (kcat %d, python %d)", got, n, kc.set.len(), py.set.len())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("kcat and python together did not consume every record: %v\n%s\n%s", err, kc.report(), py.report())
	}
	for _, c := range []*toolConsumer{kc, py} {
		if bad := c.set.outside(end); len(bad) > 0 {
			t.Fatalf("%s consumed records that were never produced: %v", c.name, bad)
		}
	}
	if union.len() != n {
		t.Fatalf("consumed %d distinct records, produced %d", union.len(), n)
	}
	t.Logf("kcat consumed %d records from partitions %v; python %d from %v",
		kc.set.len(), kc.set.partitions(), py.set.len(), py.set.partitions())
	if kc.set.len() == 0 || py.set.len() == 0 {
		t.Fatalf("both members must be assigned partitions: kcat consumed %d, python %d records", kc.set.len(), py.set.len())
	}

	checkCommittedAtEnd(t, adm, group, topic, groupTimeout)
	py.stop(t, true)
	kc.stop(t, false)
	checkCommittedAtEnd(t, adm, group, topic, groupTimeout)
}

// requirePythonModule skips the test unless systemPython can import
// module; under CI (env CI set) it fails instead, as requireTool does.
func requirePythonModule(t testing.TB, module string) {
	t.Helper()
	out, err := exec.Command(systemPython, "-c", "import "+module).CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s cannot import %s (run scripts/test-deps.sh): %v %s", systemPython, module, err, bytes.TrimSpace(out))
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set", msg)
	}
	t.Skip(msg)
}

// logToolVersions logs kcat's and confluent-kafka's versions, so a failure
// names the clients it ran against.
func logToolVersions(t testing.TB, kcat string) {
	t.Helper()
	// kcat -V exits non-zero on some versions; its first line is enough.
	out, _ := exec.Command(kcat, "-V").CombinedOutput()
	first, _, _ := strings.Cut(string(out), "\n")
	py, err := exec.Command(systemPython, "-c",
		"import confluent_kafka as c; print(c.version()[0], 'librdkafka', c.libversion()[0])").CombinedOutput()
	if err != nil {
		t.Fatalf("confluent_kafka version: %v: %s", err, py)
	}
	t.Logf("kcat: %s; confluent-kafka: %s", first, bytes.TrimSpace(py))
}

// position is one record's place in the test topic.
type position struct {
	partition int32
	offset    int64
}

// positionSet is a set of positions, safe for concurrent use.
type positionSet struct {
	mu  sync.Mutex
	set map[position]int
}

func newPositionSet() *positionSet { return &positionSet{set: make(map[position]int)} }

func (s *positionSet) add(p position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set[p]++
}

func (s *positionSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.set)
}

// partitions returns how many distinct records came from each partition.
func (s *positionSet) partitions() map[int32]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int32]int)
	for p := range s.set {
		out[p.partition]++
	}
	return out
}

// outside returns positions not below the end offset of their partition.
func (s *positionSet) outside(end map[int32]int64) []position {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []position
	for p := range s.set {
		if e, ok := end[p.partition]; !ok || p.offset < 0 || p.offset >= e {
			out = append(out, p)
		}
	}
	return out
}

// toolConsumer is an external consumer process that prints
// "<partition> <offset>" per record on stdout.
type toolConsumer struct {
	name   string
	cmd    *exec.Cmd
	set    *positionSet // what this consumer read
	done   chan struct{}
	stderr *syncBuffer
	bad    *syncBuffer // stdout lines that did not parse
	err    error       // cmd.Wait's result, once done is closed
}

// startToolConsumer starts path with args, adding each record it prints to
// its own set and to union. The process is killed when the test ends if
// it still runs.
func startToolConsumer(t testing.TB, name string, union *positionSet, path string, args ...string) *toolConsumer {
	t.Helper()
	c := &toolConsumer{
		name:   name,
		cmd:    exec.Command(path, args...),
		set:    newPositionSet(),
		done:   make(chan struct{}),
		stderr: new(syncBuffer),
		bad:    new(syncBuffer),
	}
	c.cmd.Env = cleanEnv()
	c.cmd.Stderr = c.stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", commandLine(path, args), err)
	}
	t.Logf("started %s: %s", name, commandLine(path, args))
	go func() {
		c.scan(stdout, union)
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

func (c *toolConsumer) scan(r io.Reader, union *positionSet) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var p position
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &p.partition, &p.offset); err != nil {
			fmt.Fprintf(c.bad, "%q\n", sc.Text())
			continue
		}
		c.set.add(p)
		union.add(p)
	}
	_, _ = io.Copy(io.Discard, r)
}

// exited returns an error if the consumer has exited.
func (c *toolConsumer) exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited early: %v\n%s", c.name, c.err, c.report())
	default:
		return nil
	}
}

// stop sends SIGTERM and waits for the consumer to close (leaving the
// group). If mustSucceed, it fails the test unless the exit status is 0.
func (c *toolConsumer) stop(t testing.TB, mustSucceed bool) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("%s: SIGTERM: %v", c.name, err)
	}
	select {
	case <-c.done:
	case <-time.After(toolTimeout):
		t.Fatalf("%s did not exit within %v of SIGTERM\n%s", c.name, toolTimeout, c.report())
	}
	if c.err != nil {
		if mustSucceed {
			t.Fatalf("%s: %v\n%s", c.name, c.err, c.report())
		}
		t.Logf("%s exited after SIGTERM: %v", c.name, c.err)
	}
}

// report formats the consumer's stderr and unparsed output.
func (c *toolConsumer) report() string {
	return fmt.Sprintf("---- %s stderr ----\n%s---- %s unparsed stdout ----\n%s", c.name, c.stderr.String(), c.name, c.bad.String())
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
