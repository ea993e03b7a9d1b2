package e2e

// The client matrix: every popular Kafka client, driven against `strait dev --nodes 3`
// through the same checks, one file per client (client_<name>_test.go).
//
// A client is driven by a small program of its own language (under e2e/clients: Go
// programs in a module of their own, so Strait's module does not depend on the
// clients; Python and JavaScript scripts; kcat through its command line). Every driver
// answers the same commands and prints what its client saw; the checks here judge it,
// mostly against what franz-go reads back from the same cluster:
//
//	metadata BOOTSTRAP TOPIC                  one JSON line: brokers, partitions (id, leader, replicas, isr)
//	create BOOTSTRAP TOPIC PARTITIONS RF      create with the client's admin API
//	delete BOOTSTRAP TOPIC                    delete with it
//	produce BOOTSTRAP TOPIC CODEC N           N records, key k<i%100>, value v%08d of i
//	consume BOOTSTRAP TOPIC N                 read N from the start: "partition offset key value" lines
//	group BOOTSTRAP TOPIC GROUP N             two members consume N records between them, commit, leave:
//	                                          "member partition offset" lines
//	admin BOOTSTRAP TOPIC GROUP BROKER        set the topic's retention.ms to 3600000, then one JSON line:
//	                                          retention_ms, broker_configs, groups, group_state, offsets, lag
//	records BOOTSTRAP TOPIC                   produce and read the special records: one JSON line each
//	txn BOOTSTRAP TOPIC                       commit c0..c4 in a transaction, abort a0..a4 in another
//	version                                   the client's version, as the README table names it
//
// The README's compatibility table is rendered from the specs below
// (TestClientMatrixTable), so it cannot drift from what runs.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
)

// check is one part of a client's suite, named as the README table names it.
type check string

const (
	checkMetadata     check = "metadata"
	checkTopics       check = "create/delete topic"
	checkCodecs       check = "produce/consume 5,000 keyed records"
	checkGroup        check = "group of two: commit, restart, resume"
	checkAdmin        check = "admin"
	checkRecords      check = "records"
	checkTransactions check = "transactions"
)

// clientSpec is one client of the matrix: what its suite covers.
type clientSpec struct {
	name    string // as the table names it
	test    string // the suite's test function
	version string // what runs; the suite fails if its driver reports another
	checks  []check
	codecs  []string // compression codecs produced and consumed
	admin   []string // admin calls: "configs", "groups", "offsets", "lag"
	records []string // record features: "headers", "timestamps", "null keys", "empty values", "900 KB"
	notes   string   // what the client lacks, for the table
	// took is how long the client's suite and its transactions test take, as
	// measured by suiteTimeCommand on a 2-core machine with a warm Go build cache
	// (a cold one adds the Go driver's build: confluent-kafka-go compiles its bundled
	// librdkafka with cgo). Measured, not checked: the suite logs what it took.
	took string
}

// suiteTimeCommand is how the table's suite times are measured, X the client's test.
const suiteTimeCommand = "go test -count=1 -run '^TestClientX(Transactions)?$' -v ./e2e/"

// clientMatrix is every client, in the table's order.
var clientMatrix = []*clientSpec{
	&franzgoClient, &saramaClient, &kafkagoClient, &confluentGoClient, &confluentPythonClient, &kafkaPythonClient, &kafkajsClient, &kcatClient,
}

const (
	codecRecords  = 5_000
	groupRecords  = 1_000
	matrixTimeout = 90 * time.Second // one driver command
)

var allCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// clientDriver runs one driver command and returns its standard output, failing the
// test if the command fails.
type clientDriver interface {
	run(t testing.TB, cmd string, args ...string) string
}

// execDriver runs a program (argv, then the command and its arguments).
type execDriver struct {
	argv []string
	dir  string
	env  []string
}

func (d execDriver) run(t testing.TB, cmd string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), matrixTimeout)
	defer cancel()
	argv := slices.Concat(d.argv, []string{cmd}, args)
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Dir = d.dir
	c.Env = append(cleanEnv(), d.env...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	c.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := c.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timed out after %v)", err, matrixTimeout)
		}
		t.Fatalf("%s: %v\nstderr:\n%s\nstdout (last 2 KB):\n%s", commandLine(argv[0], argv[1:]), err, stderr.String(), tail(stdout.String(), 2048))
	}
	if len(args) > 1 { // args[0] is the bootstrap address
		t.Logf("%s %s: %v", cmd, strings.Join(args[1:], " "), time.Since(start).Round(time.Millisecond))
	}
	return stdout.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// clientsDir is e2e/clients, where the drivers live.
func clientsDir(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("clients: %v", err)
	}
	return filepath.Join(root, "e2e", "clients")
}

// goClientDriver builds the Go driver e2e/clients/<pkg> (a module of its own).
func goClientDriver(t testing.TB, pkg string) clientDriver {
	t.Helper()
	dir := clientsDir(t)
	bin := filepath.Join(t.TempDir(), pkg)
	start := time.Now()
	if err := buildGo(dir, "./"+pkg, bin); err != nil {
		t.Fatalf("build the %s driver: %v", pkg, err)
	}
	t.Logf("built the %s driver in %v", pkg, time.Since(start).Round(time.Millisecond))
	return execDriver{argv: []string{bin}}
}

// runClientSuite runs every check of c but transactions against one
// `strait dev --nodes 3`.
func runClientSuite(t *testing.T, c *clientSpec, d clientDriver) {
	checkDriverVersion(t, c, d)
	start := time.Now()
	t.Cleanup(func() {
		t.Logf("the %s suite took %v; the README table says %s (keep %s's took current)", c.name, time.Since(start).Round(time.Second), c.took, c.test)
	})
	p := StartDev(t, Nodes(3))
	for _, ch := range c.checks {
		if ch == checkTransactions {
			continue
		}
		t.Run(string(ch), func(t *testing.T) {
			start := time.Now()
			matrixChecks[ch](t, p, c, d)
			t.Logf("%s: %v", ch, time.Since(start).Round(time.Millisecond))
		})
	}
}

// runClientTransactions runs c's transactions check once the broker advertises the
// transaction APIs, and skips it loudly until then.
func runClientTransactions(t *testing.T, c *clientSpec, d func(testing.TB) clientDriver) {
	if !slices.Contains(c.checks, checkTransactions) {
		t.Fatalf("%s has no transactions check", c.name)
	}
	p := StartDev(t, Nodes(3))
	if !advertises(t, p, kmsg.AddPartitionsToTxn) {
		t.Skipf("SKIPPED: %s transactions: the broker does not advertise AddPartitionsToTxn (key 24) "+
			"in ApiVersions; Strait has no transactions yet (the transactions issue). "+
			"This test turns on by itself once it does.", c.name)
	}
	checkClientTransactions(t, p, c, d(t))
}

// advertises reports whether the broker lists key in ApiVersions.
func advertises(t testing.TB, p *Process, key kmsg.Key) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	cl := p.Client(t)
	defer cl.Close()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	return slices.ContainsFunc(resp.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == int16(key) })
}

// checkDriverVersion fails unless the driver runs the version the table names.
func checkDriverVersion(t *testing.T, c *clientSpec, d clientDriver) {
	t.Helper()
	got := strings.TrimSpace(d.run(t, "version"))
	if got != c.version {
		t.Fatalf("%s driver reports version %q; the table says %q: update the spec in %s and the README (go test ./e2e -run TestClientMatrixTable -update-client-table)",
			c.name, got, c.version, c.test)
	}
	t.Logf("%s %s", c.name, got)
}

var matrixChecks = map[check]func(t *testing.T, p *Process, c *clientSpec, d clientDriver){
	checkMetadata: checkClientMetadata,
	checkTopics:   checkClientTopics,
	checkCodecs:   checkClientCodecs,
	checkGroup:    checkClientGroup,
	checkAdmin:    checkClientAdmin,
	checkRecords:  checkClientRecords,
}

// topicName is a topic of the check for client c.
func topicName(c *clientSpec, what string) string {
	return what + "-" + strings.ToLower(strings.TrimPrefix(c.test, "TestClient"))
}

// createReplicated creates topic with n partitions and the cluster's replication
// factor (3 in `strait dev --nodes 3`) and waits until every partition has a leader.
func createReplicated(t testing.TB, p *Process, topic string, n int32) {
	t.Helper()
	adm := p.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, n, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	waitTopicReady(t, adm, topic, int(n), clusterTimeout)
}

// checkClientMetadata: the client parses Metadata, and every leader, replica and ISR
// id it is given is a broker the same answer lists, the leader among the replicas and
// the ISR within them.
func checkClientMetadata(t *testing.T, p *Process, c *clientSpec, d clientDriver) {
	topic := topicName(c, "metadata")
	createReplicated(t, p, topic, 3)
	var got struct {
		Brokers    []int32 `json:"brokers"`
		Partitions []struct {
			ID       int32   `json:"id"`
			Leader   int32   `json:"leader"`
			Replicas []int32 `json:"replicas"`
			ISR      []int32 `json:"isr"`
		} `json:"partitions"`
	}
	out := d.run(t, "metadata", p.Addr(), topic)
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("metadata output %q: %v", out, err)
	}
	if len(got.Brokers) == 0 || len(got.Partitions) != 3 {
		t.Fatalf("%s sees brokers %v and %d partitions; want brokers and 3 partitions", c.name, got.Brokers, len(got.Partitions))
	}
	for _, part := range got.Partitions {
		for _, id := range slices.Concat([]int32{part.Leader}, part.Replicas, part.ISR) {
			if !slices.Contains(got.Brokers, id) {
				t.Errorf("partition %d names broker %d, which is not listed (brokers %v)", part.ID, id, got.Brokers)
			}
		}
		if !slices.Contains(part.Replicas, part.Leader) || !slices.Contains(part.ISR, part.Leader) {
			t.Errorf("partition %d: leader %d not among replicas %v and ISR %v", part.ID, part.Leader, part.Replicas, part.ISR)
		}
		for _, id := range part.ISR {
			if !slices.Contains(part.Replicas, id) {
				t.Errorf("partition %d: ISR %v not within replicas %v", part.ID, part.ISR, part.Replicas)
			}
		}
	}
}

// checkClientTopics: a topic the client creates is there with its partitions, and
// gone once the client deletes it.
func checkClientTopics(t *testing.T, p *Process, c *clientSpec, d clientDriver) {
	topic := topicName(c, "created")
	adm := p.Admin(t)
	d.run(t, "create", p.Addr(), topic, "3", "3")
	waitTopicReady(t, adm, topic, 3, clusterTimeout)
	d.run(t, "delete", p.Addr(), topic)
	Eventually(t, clusterTimeout, func(ctx context.Context) error {
		details, err := adm.ListTopics(ctx)
		if err != nil {
			return err
		}
		if details.Has(topic) {
			return fmt.Errorf("%s is still listed", topic)
		}
		return nil
	})
}

// checkClientCodecs: for each codec, 5,000 keyed records the client produces are
// stored in batches of that codec, and the client reads every one back once, with
// its key, in produce order within each partition.
func checkClientCodecs(t *testing.T, p *Process, c *clientSpec, d clientDriver) {
	for _, codec := range c.codecs {
		t.Run(codec, func(t *testing.T) {
			topic := topicName(c, "codec-"+codec)
			createReplicated(t, p, topic, 3)
			d.run(t, "produce", p.Addr(), topic, codec, strconv.Itoa(codecRecords))
			checkBatchCodecs(t, p, topic, 3, codec)
			out := d.run(t, "consume", p.Addr(), topic, strconv.Itoa(codecRecords))
			checkConsumedKeyed(t, out, codecRecords)
		})
	}
}

var codecIDs = map[string]int16{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

// fewRecords is how many records a batch may hold and still be stored uncompressed
// when its producer was asked for a codec: librdkafka and franz-go send a batch as it
// is when compressing does not shrink it, which happens to a batch of a record or two
// (a codec's header outweighs what it saves), never to one of the matrix's many
// similar keyed records ("k17", "v00000117").
const fewRecords = 10

// checkBatchCodecs reads the first batches of each partition, as the nodes store them
// (as sent: Strait does not recompress), and fails unless every batch is stored with
// codec (attributes bits 0-2), but for small ones stored uncompressed (fewRecords).
func checkBatchCodecs(t testing.TB, p *Process, topic string, partitions int32, codec string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	cl, err := wire.Dial(ctx, p.Addr(), wire.ClientOptions{ClientID: "codec-check"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.MaxWaitMillis = 12, -1, 4<<20, 0
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	for i := range partitions {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.PartitionMaxBytes = i, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
	}
	req.Topics = append(req.Topics, ft)
	kresp, err := cl.Do(ctx, req)
	if err != nil {
		t.Fatalf("fetch %s: %v", topic, err)
	}
	want := codecIDs[codec]
	var inCodec, small int
	for _, rt := range kresp.(*kmsg.FetchResponse).Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("fetch %s: error %d", tp{topic, rp.Partition}, rp.ErrorCode)
			}
			for b := rp.RecordBatches; len(b) >= 61; {
				var batch kmsg.RecordBatch
				if err := batch.ReadFrom(b); err != nil {
					break // a partial batch at the end of the fetch
				}
				got := batch.Attributes & 0x7
				switch {
				case got == want:
					inCodec++
				case got == 0 && batch.NumRecords < fewRecords:
					small++
				default:
					t.Fatalf("%s: a batch of %d records at offset %d stored with codec %d, want %s (%d)",
						tp{topic, rp.Partition}, batch.NumRecords, batch.FirstOffset, got, codec, want)
				}
				b = b[12+int(batch.Length):]
			}
		}
	}
	if inCodec == 0 {
		t.Fatalf("%s: no batch stored with codec %s", topic, codec)
	}
	t.Logf("%s: %d batches stored with codec %s, %d small ones uncompressed", topic, inCodec, codec, small)
}

// checkConsumedKeyed checks "partition offset key value" lines: every record i in
// [0, n) read exactly once, with key k<i%100>, and within a partition in increasing
// order of i and offset.
func checkConsumedKeyed(t testing.TB, out string, n int) {
	t.Helper()
	seen := make([]bool, n)
	type last struct{ i, offset int64 }
	lasts := make(map[int32]last)
	lines := 0
	for line := range strings.Lines(out) {
		var part int32
		var offset int64
		var key, value string
		if _, err := fmt.Sscanf(line, "%d %d %s %s", &part, &offset, &key, &value); err != nil {
			t.Fatalf("consumed line %q: %v", line, err)
		}
		var i int
		if _, err := fmt.Sscanf(value, "v%08d", &i); err != nil || i < 0 || i >= n {
			t.Fatalf("consumed line %q: not a produced value", line)
		}
		if want := fmt.Sprintf("k%d", i%100); key != want {
			t.Fatalf("value %s has key %s, want %s", value, key, want)
		}
		if seen[i] {
			t.Fatalf("value %s read twice", value)
		}
		seen[i] = true
		if l, ok := lasts[part]; ok && (int64(i) <= l.i || offset <= l.offset) {
			t.Fatalf("partition %d: value %s at offset %d after v%08d at %d; produce order not kept", part, value, offset, l.i, l.offset)
		}
		lasts[part] = last{int64(i), offset}
		lines++
	}
	if lines != n {
		t.Fatalf("read %d records, want %d", lines, n)
	}
}

// checkClientGroup: two members of a group consume every record between them and
// commit; started again (a restart), they resume from the commits and read exactly
// the records produced since.
func checkClientGroup(t *testing.T, p *Process, c *clientSpec, d clientDriver) {
	topic, group := topicName(c, "group"), topicName(c, "group")
	const partitions = 4
	createReplicated(t, p, topic, partitions)
	adm := p.Admin(t)
	var from map[int32]int64 // where the second run must resume
	for run := range 2 {
		acked := produceSpread(t, p, topic, partitions, groupRecords)
		out := d.run(t, "group", p.Addr(), topic, group, strconv.Itoa(groupRecords))
		perMember := map[int]int{}
		got := map[position]bool{}
		for line := range strings.Lines(out) {
			var m int
			var pos position
			if _, err := fmt.Sscanf(line, "%d %d %d", &m, &pos.partition, &pos.offset); err != nil {
				t.Fatalf("group line %q: %v", line, err)
			}
			if pos.offset < from[pos.partition] {
				t.Fatalf("run %d: member %d read %s offset %d, below the committed %d: it did not resume", run, m, tp{topic, pos.partition}, pos.offset, from[pos.partition])
			}
			perMember[m]++
			got[pos] = true
		}
		for _, r := range acked {
			if !got[position{r.Partition, r.Offset}] {
				t.Fatalf("run %d: %s offset %d was never consumed", run, tp{topic, r.Partition}, r.Offset)
			}
		}
		if len(got) != len(acked) || perMember[0] == 0 || perMember[1] == 0 {
			t.Fatalf("run %d: consumed %d distinct records of %d, per member %v; want all, by both members", run, len(got), len(acked), perMember)
		}
		checkCommittedAtEnd(t, adm, group, topic, groupTimeout)
		ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
		var err error
		from, err = endOffsets(ctx, adm, topic)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("run %d: members consumed %v records", run, perMember)
	}
}

// checkClientAdmin: what the client's admin calls report matches the broker: a topic
// config it sets, broker configs, the group list and state, committed offsets and lag.
func checkClientAdmin(t *testing.T, p *Process, c *clientSpec, d clientDriver) {
	topic, group := topicName(c, "admin"), topicName(c, "admin")
	createReplicated(t, p, topic, 2)
	produceSpread(t, p, topic, 2, 100) // 50 records per partition
	adm := p.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: topic, Partition: 0, At: 20, LeaderEpoch: -1})
	commits.Add(kadm.Offset{Topic: topic, Partition: 1, At: 30, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, group, commits); err != nil || resp.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, resp.Error())
	}
	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) == 0 {
		t.Fatalf("list brokers: %v (%d)", err, len(brokers))
	}
	broker := brokers[0].NodeID

	out := d.run(t, "admin", p.Addr(), topic, group, strconv.Itoa(int(broker)))
	var got struct {
		RetentionMs   *string           `json:"retention_ms"`
		BrokerConfigs map[string]string `json:"broker_configs"`
		Groups        []string          `json:"groups"`
		GroupState    *string           `json:"group_state"`
		Offsets       map[string]int64  `json:"offsets"`
		Lag           map[string]int64  `json:"lag"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("admin output %q: %v", out, err)
	}
	for _, call := range c.admin {
		switch call {
		case "configs":
			rc, err := adm.DescribeTopicConfigs(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			v, err := rc.On(topic, nil)
			if err != nil || !slices.ContainsFunc(v.Configs, func(c kadm.Config) bool { return c.Key == "retention.ms" && c.MaybeValue() == "3600000" }) {
				t.Errorf("after the client set retention.ms=3600000, the broker has %+v (%v)", v.Configs, err)
			}
			if got.RetentionMs == nil || *got.RetentionMs != "3600000" {
				t.Errorf("the client reads retention.ms %v; want 3600000", got.RetentionMs)
			}
			bc, err := adm.DescribeBrokerConfigs(ctx, broker)
			if err != nil || len(bc) != 1 {
				t.Fatalf("describe broker %d: %v", broker, err)
			}
			for _, name := range []string{"num.partitions", "default.replication.factor", "log.retention.ms", "message.max.bytes", "min.insync.replicas"} {
				i := slices.IndexFunc(bc[0].Configs, func(c kadm.Config) bool { return c.Key == name })
				if i < 0 {
					t.Errorf("the broker does not report %s", name)
				} else if v, ok := got.BrokerConfigs[name]; !ok || v != bc[0].Configs[i].MaybeValue() {
					t.Errorf("the client reads broker config %s = %q (%v); the broker has %q", name, v, ok, bc[0].Configs[i].MaybeValue())
				}
			}
		case "groups":
			if !slices.Contains(got.Groups, group) {
				t.Errorf("the client lists groups %v; want %s among them", got.Groups, group)
			}
			if got.GroupState != nil && *got.GroupState != "Empty" {
				t.Errorf("the client describes %s as %q; want Empty", group, *got.GroupState)
			}
		case "offsets":
			if want := map[string]int64{"0": 20, "1": 30}; !mapsEqual(got.Offsets, want) {
				t.Errorf("the client reads committed offsets %v; want %v", got.Offsets, want)
			}
		case "lag":
			if want := map[string]int64{"0": 30, "1": 20}; !mapsEqual(got.Lag, want) {
				t.Errorf("the client reads lag %v; want %v", got.Lag, want)
			}
		default:
			t.Fatalf("unknown admin call %q in %s's spec", call, c.name)
		}
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// special is a record of the records check (the drivers' driver.Specials).
type special struct {
	key       *string
	value     []byte
	headers   [][2]string
	timestamp int64 // 0: the producer's clock
}

func specials() []special {
	str := func(s string) *string { return &s }
	large := make([]byte, 900<<10)
	for i := range large {
		large[i] = byte('a' + i%26)
	}
	return []special{
		{key: str("headers"), value: []byte("with headers and a timestamp"),
			headers: [][2]string{{"h1", "one"}, {"h2", ""}}, timestamp: 1_700_000_000_000},
		{key: nil, value: []byte("null key")},
		{key: str("empty"), value: []byte{}},
		{key: str("large"), value: large},
	}
}

// consumedSpecial is a record of the records check as a driver prints it.
type consumedSpecial struct {
	Key         *string     `json:"key"`
	ValueLen    int         `json:"value_len"`
	ValueSHA256 string      `json:"value_sha256"`
	Headers     [][2]string `json:"headers"`
	TimestampMs int64       `json:"ts"`
}

// checkClientRecords: headers, a set timestamp, a null key, an empty value and a
// 900 KB value survive the client's produce as Kafka stores them (read back with
// franz-go) and the client's consume. Features the client lacks are not checked.
func checkClientRecords(t *testing.T, p *Process, c *clientSpec, d clientDriver) {
	topic := topicName(c, "records")
	createReplicated(t, p, topic, 1)
	out := d.run(t, "records", p.Addr(), topic)
	want := specials()
	has := func(f string) bool { return slices.Contains(c.records, f) }

	// As stored: what franz-go reads.
	cl := p.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(4<<20))
	stored := consumeAll(t, cl, len(want), clusterTimeout)
	for i, r := range stored {
		var hs [][2]string
		for _, h := range r.Headers {
			hs = append(hs, [2]string{h.Key, string(h.Value)})
		}
		var key *string
		if r.Key != nil {
			k := string(r.Key)
			key = &k
		}
		sum := sha256.Sum256(r.Value)
		checkSpecial(t, "stored", i, want[i], consumedSpecial{key, len(r.Value), hex.EncodeToString(sum[:]), hs, r.Timestamp.UnixMilli()}, has)
	}

	// As the client reads it.
	var i int
	sc := bufio.NewScanner(strings.NewReader(out))
	for ; sc.Scan(); i++ {
		var got consumedSpecial
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("records line %q: %v", sc.Text(), err)
		}
		if i < len(want) {
			checkSpecial(t, "read by "+c.name, i, want[i], got, has)
		}
	}
	if i != len(want) {
		t.Fatalf("%s read %d records, want %d", c.name, i, len(want))
	}
}

func checkSpecial(t testing.TB, where string, i int, want special, got consumedSpecial, has func(string) bool) {
	t.Helper()
	sum := sha256.Sum256(want.value)
	switch {
	case (want.key == nil) != (got.Key == nil) && (want.key != nil || has("null keys")):
		t.Errorf("%s record %d: key %v, want %v", where, i, quoteOrNull(got.Key), quoteOrNull(want.key))
	case want.key != nil && got.Key != nil && *want.key != *got.Key:
		t.Errorf("%s record %d: key %q, want %q", where, i, *got.Key, *want.key)
	case got.ValueLen != len(want.value) || got.ValueSHA256 != hex.EncodeToString(sum[:]):
		t.Errorf("%s record %d: value of %d bytes (sha256 %s), want %d bytes", where, i, got.ValueLen, got.ValueSHA256, len(want.value))
	}
	if has("headers") && !slices.Equal(got.Headers, want.headers) && (len(got.Headers) > 0 || len(want.headers) > 0) {
		t.Errorf("%s record %d: headers %q, want %q", where, i, got.Headers, want.headers)
	}
	if has("timestamps") && want.timestamp != 0 && got.TimestampMs != want.timestamp {
		t.Errorf("%s record %d: timestamp %d, want %d", where, i, got.TimestampMs, want.timestamp)
	}
	if now := time.Now().UnixMilli(); want.timestamp == 0 && (got.TimestampMs < now-time.Hour.Milliseconds() || got.TimestampMs > now+time.Minute.Milliseconds()) {
		t.Errorf("%s record %d: timestamp %d is not the producer's clock (now %d)", where, i, got.TimestampMs, now)
	}
}

func quoteOrNull(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}

// checkClientTransactions: of a committed transaction (c0..c4) and an aborted one
// (a0..a4), a read_committed consumer sees only the committed records and a
// read_uncommitted one sees both.
func checkClientTransactions(t *testing.T, p *Process, c *clientSpec, d clientDriver) {
	topic := topicName(c, "txn")
	createReplicated(t, p, topic, 1)
	d.run(t, "txn", p.Addr(), topic)
	read := func(level kgo.IsolationLevel, n int) []string {
		cl := p.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level))
		var values []string
		for _, r := range consumeAll(t, cl, n, clusterTimeout) {
			values = append(values, string(r.Value))
		}
		// Nothing more may come: wait a little for a record that should not be there.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
		return values
	}
	if got, want := read(kgo.ReadCommitted(), 5), []string{"c0", "c1", "c2", "c3", "c4"}; !slices.Equal(got, want) {
		t.Errorf("read_committed: %v, want %v", got, want)
	}
	if got := read(kgo.ReadUncommitted(), 10); len(got) != 10 {
		t.Errorf("read_uncommitted: %v, want the 10 records of both transactions", got)
	}
}

// requireRuntime returns the path of a program a client's driver runs on (node,
// npm): missing, the suite is skipped with a loud message, or fails under CI.
func requireRuntime(t testing.TB, client, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("SKIPPED: the %s suite needs %s, which is not installed (run scripts/test-deps.sh)", client, name)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set, so this fails", msg)
	}
	t.Skip(msg)
	return ""
}

var updateClientTable = flag.Bool("update-client-table", false, "rewrite README.md's client compatibility table from the client specs")

const (
	tableStart = "<!-- client-matrix: generated by TestClientMatrixTable from e2e/client_*_test.go; do not edit -->"
	tableEnd   = "<!-- end of client-matrix -->"
)

// TestClientMatrixTable fails unless README.md's compatibility table is the one the
// client specs render, and every spec names a test that exists in its file; with
// -update-client-table it rewrites the table.
func TestClientMatrixTable(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(root, "README.md")
	text, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	start, end := bytes.Index(text, []byte(tableStart)), bytes.Index(text, []byte(tableEnd))
	if start < 0 || end < start {
		t.Fatalf("README.md lacks the client table markers %q ... %q", tableStart, tableEnd)
	}
	want := renderClientTable()
	got := string(text[start+len(tableStart) : end])
	if got != want {
		if *updateClientTable {
			updated := slices.Concat(text[:start+len(tableStart)], []byte(want), text[end:])
			if err := os.WriteFile(readme, updated, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote the client table in %s", readme)
		} else {
			t.Errorf("README.md's client table is out of date; run go test ./e2e -run TestClientMatrixTable -update-client-table. Want:\n%s", want)
		}
	}
	for _, c := range clientMatrix {
		if c.took == "" {
			t.Errorf("%s: no suite time (took); measure it with %s", c.name, suiteTimeCommand)
		}
		file := filepath.Join(root, "e2e", "client_"+strings.ToLower(strings.TrimPrefix(c.test, "TestClient"))+"_test.go")
		src, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for _, fn := range []string{c.test, c.test + "Transactions"} {
			if fn == c.test+"Transactions" && !slices.Contains(c.checks, checkTransactions) {
				continue
			}
			if !bytes.Contains(src, []byte("func "+fn+"(t *testing.T)")) {
				t.Errorf("%s: %s does not define %s", c.name, file, fn)
			}
		}
		for _, ch := range c.checks {
			if _, ok := matrixChecks[ch]; !ok && ch != checkTransactions {
				t.Errorf("%s: unknown check %q", c.name, ch)
			}
		}
	}
}

// renderClientTable renders the compatibility table, between blank lines.
func renderClientTable() string {
	var b strings.Builder
	b.WriteString("\n| client | version | tested against `strait dev --nodes 3` | not tested (the client lacks it) | test | suite time |\n|---|---|---|---|---|---|\n")
	for _, c := range clientMatrix {
		var tested []string
		for _, ch := range c.checks {
			switch ch {
			case checkCodecs:
				tested = append(tested, fmt.Sprintf("%s (%s), stored in that codec", ch, strings.Join(c.codecs, ", ")))
			case checkAdmin:
				tested = append(tested, fmt.Sprintf("%s (%s)", ch, strings.Join(c.admin, ", ")))
			case checkRecords:
				tested = append(tested, strings.Join(c.records, ", "))
			case checkTransactions:
				tested = append(tested, "transactions (a commit and an abort, read_committed and read_uncommitted)")
			default:
				tested = append(tested, string(ch))
			}
		}
		notes := c.notes
		if notes == "" {
			notes = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s` | %s |\n", c.name, c.version, strings.Join(tested, "; "), notes, c.test, c.took)
	}
	fmt.Fprintf(&b, "\nSuite times: `%s` (X as in the test's name: FranzGo, Kcat) on 2 cores, with a warm Go build cache.\n\n", suiteTimeCommand)
	return b.String()
}
