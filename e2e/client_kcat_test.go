package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kcat, librdkafka's command-line client (Debian's kcat), driven through its command
// line by kcatDriver below: it has no driver program of its own. It has no admin
// commands (no topic creation or deletion, no configs, no group listing) and no option
// to set a produced record's timestamp. Its consumer group (-G) commits what it
// printed when it stops (SIGINT closes the consumer, which commits).
//
// Its transactional producer (-X transactional.id) commits when its input ends, and
// cannot abort: on SIGINT kcat 1.7.1 exits ("Program terminated while producing")
// without calling abort, leaving the transaction to the coordinator's timeout, and it
// reads its input in blocks, so which records it produced before the signal is not
// the test's to choose. The matrix's transactions check (a commit and an abort) is
// therefore not run; TestClientKcatTransactionCommit checks the commit.
var kcatClient = clientSpec{
	name:    "kcat",
	test:    "TestClientKcat",
	version: "1.7.1 (librdkafka 2.0.2)",
	checks:  []check{checkMetadata, checkCodecs, checkGroup, checkRecords},
	codecs:  allCodecs,
	records: []string{"headers", "null keys", "empty values", "900 KB"},
	notes: "create/delete topic, admin: kcat has no admin commands; timestamps: kcat cannot set a produced record's timestamp; " +
		"transactions: kcat commits one when its input ends (TestClientKcatTransactionCommit) but cannot abort one",
	took: "13 s; TestClientKcatTransactionCommit 3 s",
}

func TestClientKcat(t *testing.T) {
	runClientSuite(t, &kcatClient, newKcatDriver(t))
}

// TestClientKcatTransactionCommit: records kcat produces in a transaction are read by
// a read_committed consumer once its input ends, and nothing else is there.
func TestClientKcatTransactionCommit(t *testing.T) {
	d := newKcatDriver(t).(kcatDriver)
	p := StartDev(t, Nodes(3))
	topic := topicName(&kcatClient, "txn")
	createReplicated(t, p, topic, 1)
	d.txn(t, p.Addr(), topic)
	for level, iso := range map[string]kgo.IsolationLevel{"read_committed": kgo.ReadCommitted(), "read_uncommitted": kgo.ReadUncommitted()} {
		cl := p.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
		var values []string
		for _, r := range consumeAll(t, cl, 5, clusterTimeout) {
			values = append(values, string(r.Value))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
		cancel()
		if want := []string{"c0", "c1", "c2", "c3", "c4"}; !slices.Equal(values, want) {
			t.Errorf("%s: read %v, want %v", level, values, want)
		}
	}
}

// kcatDriver answers the matrix's driver commands by running kcat.
type kcatDriver struct{ path string }

func newKcatDriver(t testing.TB) clientDriver {
	t.Helper()
	return kcatDriver{path: requireRuntime(t, "kcat", "kcat")}
}

func (d kcatDriver) run(t testing.TB, cmd string, args ...string) string {
	t.Helper()
	start := time.Now()
	defer func() {
		if len(args) > 1 {
			t.Logf("kcat %s %s: %v", cmd, strings.Join(args[1:], " "), time.Since(start).Round(time.Millisecond))
		}
	}()
	switch cmd {
	case "version":
		return d.version(t)
	case "metadata":
		return d.metadata(t, args[0], args[1])
	case "produce":
		return d.produce(t, args[0], args[1], args[2], args[3])
	case "consume":
		return d.kcat(t, "", "-C", "-b", args[0], "-t", args[1], "-o", "beginning", "-e", "-q",
			"-c", args[2], "-f", `%p %o %k %s\n`)
	case "group":
		return d.group(t, args[0], args[1], args[2], args[3])
	case "records":
		return d.records(t, args[0], args[1])
	}
	t.Fatalf("kcat cannot %s", cmd)
	return ""
}

// kcat runs kcat with stdin and returns its standard output.
func (d kcatDriver) kcat(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), matrixTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, d.path, args...)
	c.Env = cleanEnv()
	c.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	c.WaitDelay = 5 * time.Second
	if err := c.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timed out after %v)", err, matrixTimeout)
		}
		t.Fatalf("%s: %v\nstderr:\n%s\nstdout (last 2 KB):\n%s", commandLine(d.path, args), err, stderr.String(), tail(stdout.String(), 2048))
	}
	if strings.Contains(stderr.String(), "Delivery failed") {
		t.Fatalf("%s: %s", commandLine(d.path, args), stderr.String())
	}
	return stdout.String()
}

var kcatVersion = regexp.MustCompile(`Version (\S+) \(.*librdkafka (\S+)`)

func (d kcatDriver) version(t testing.TB) string {
	m := kcatVersion.FindStringSubmatch(d.kcat(t, "", "-V"))
	if m == nil {
		t.Fatal("kcat -V names no version")
	}
	return fmt.Sprintf("%s (librdkafka %s)", m[1], m[2])
}

// metadata turns kcat -L -J into the driver's metadata line.
func (d kcatDriver) metadata(t testing.TB, bootstrap, topic string) string {
	t.Helper()
	type id struct {
		ID int32 `json:"id"`
	}
	var md struct {
		Brokers []id `json:"brokers"`
		Topics  []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
				Replicas  []id  `json:"replicas"`
				ISRs      []id  `json:"isrs"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	out := d.kcat(t, "", "-L", "-J", "-b", bootstrap, "-t", topic, "-m", "30")
	if err := json.Unmarshal([]byte(out), &md); err != nil || len(md.Topics) != 1 {
		t.Fatalf("kcat -L -J: %v (%d topics)\n%s", err, len(md.Topics), out)
	}
	ids := func(l []id) []int32 {
		r := []int32{}
		for _, x := range l {
			r = append(r, x.ID)
		}
		return r
	}
	type part struct {
		ID       int32   `json:"id"`
		Leader   int32   `json:"leader"`
		Replicas []int32 `json:"replicas"`
		ISR      []int32 `json:"isr"`
	}
	var parts []part
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, part{p.Partition, p.Leader, ids(p.Replicas), ids(p.ISRs)})
	}
	b, err := json.Marshal(map[string]any{"brokers": ids(md.Brokers), "partitions": parts})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// produce sends n keyed records, one "key:value" line each.
func (d kcatDriver) produce(t testing.TB, bootstrap, topic, codec, n string) string {
	t.Helper()
	var count int
	fmt.Sscan(n, &count)
	var in strings.Builder
	for i := range count {
		fmt.Fprintf(&in, "k%d:v%08d\n", i%100, i)
	}
	return d.kcat(t, in.String(), "-P", "-b", bootstrap, "-t", topic, "-K", ":",
		"-X", "compression.codec="+codec, "-X", "linger.ms=5", "-X", "acks=all")
}

// group runs two kcat -G members at once until they have printed n distinct records
// between them, then stops both with SIGINT, on which each closes its consumer and
// commits what it printed.
func (d kcatDriver) group(t testing.TB, bootstrap, topic, group, n string) string {
	t.Helper()
	var want int
	fmt.Sscan(n, &want)
	var (
		mu    sync.Mutex
		lines []string
		seen  = map[string]bool{}
		done  = make(chan struct{})
		once  sync.Once
		procs []*exec.Cmd
		errs  [2]bytes.Buffer
		wg    sync.WaitGroup
	)
	for m := range 2 {
		c := exec.Command(d.path, "-b", bootstrap, "-G", group, "-q", "-u", "-f", `%p %o\n`,
			"-X", "client.id=member-"+fmt.Sprint(m), "-X", "auto.offset.reset=earliest",
			"-X", "auto.commit.interval.ms=100", topic)
		c.Env = cleanEnv()
		c.Stderr = &errs[m]
		stdout, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatalf("start kcat -G: %v", err)
		}
		procs = append(procs, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				mu.Lock()
				lines = append(lines, fmt.Sprintf("%d %s\n", m, sc.Text()))
				seen[sc.Text()] = true
				if len(seen) >= want {
					once.Do(func() { close(done) })
				}
				mu.Unlock()
			}
			io.Copy(io.Discard, stdout)
		}()
	}
	stopped := false
	defer func() {
		if !stopped {
			for _, c := range procs {
				c.Process.Kill()
				c.Wait()
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(matrixTimeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("kcat -G members printed %d of %d records in %v\nstderr 0:\n%s\nstderr 1:\n%s", len(seen), want, matrixTimeout, errs[0].String(), errs[1].String())
	}
	for _, c := range procs {
		c.Process.Signal(syscall.SIGINT)
	}
	exited := make(chan struct{})
	go func() {
		wg.Wait()
		for _, c := range procs {
			c.Wait() // kcat exits 0 or by the signal: either way it closed its consumer
		}
		close(exited)
	}()
	select {
	case <-exited:
		stopped = true
	case <-time.After(30 * time.Second):
		t.Fatalf("kcat -G members did not stop within 30s of SIGINT\nstderr 0:\n%s\nstderr 1:\n%s", errs[0].String(), errs[1].String())
	}
	mu.Lock()
	defer mu.Unlock()
	return strings.Join(lines, "")
}

// records produces each special record with a kcat -P of its own (headers apply to
// every record of a run) and reads them back with kcat -C -J. A value comes from a
// file (kcat sends a file as one record), but an empty value, which kcat sends from
// a "key:" line (it sends no record for an empty file); the null key is a record
// produced with no key.
func (d kcatDriver) records(t testing.TB, bootstrap, topic string) string {
	t.Helper()
	dir := t.TempDir()
	for i, r := range specials() {
		args := []string{"-P", "-b", bootstrap, "-t", topic, "-p", "0", "-X", "acks=all"}
		for _, h := range r.headers {
			args = append(args, "-H", h[0]+"="+h[1])
		}
		if len(r.value) == 0 {
			d.kcat(t, *r.key+":\n", append(args, "-K", ":")...)
			continue
		}
		if r.key != nil {
			args = append(args, "-k", *r.key)
		}
		file := filepath.Join(dir, fmt.Sprintf("value-%d", i))
		if err := os.WriteFile(file, r.value, 0o600); err != nil {
			t.Fatal(err)
		}
		d.kcat(t, "", append(args, file)...)
	}
	out := d.kcat(t, "", "-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
		"-c", fmt.Sprint(len(specials())), "-J", "-X", "fetch.message.max.bytes=2000000")
	var b strings.Builder
	for line := range strings.Lines(out) {
		var m struct {
			Key     *string  `json:"key"`
			Payload *string  `json:"payload"`
			Headers []string `json:"headers"`
			TS      int64    `json:"ts"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("kcat -J line %q: %v", tail(line, 200), err)
		}
		var value []byte
		if m.Payload != nil {
			value = []byte(*m.Payload)
		}
		var hs [][2]string
		for i := 0; i+1 < len(m.Headers); i += 2 {
			hs = append(hs, [2]string{m.Headers[i], m.Headers[i+1]})
		}
		sum := sha256.Sum256(value)
		line, err := json.Marshal(consumedSpecial{m.Key, len(value), hex.EncodeToString(sum[:]), hs, m.TS})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// txn commits c0..c4 with kcat -X transactional.id: it commits when its input ends.
func (d kcatDriver) txn(t testing.TB, bootstrap, topic string) {
	t.Helper()
	d.kcat(t, "c0\nc1\nc2\nc3\nc4\n", "-P", "-b", bootstrap, "-t", topic, "-X", "transactional.id=kcat-txn")
}
