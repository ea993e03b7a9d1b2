//go:build linux

package e2e

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestUpstreamConnections is the front-tier issue's scenario: 2,000 client connections
// through one proxy use at most --upstream-connections-per-node connections to each
// node, and a slow node does not stall another node's traffic. Each client is a raw
// connection that sends ApiVersions, Metadata and a Produce to a partition of node 2,
// then a Fetch that long-polls a partition of node 1. While the 2,000 long polls wait at
// node 1, a franz-go client produces to and consumes from node 2's partition: it is done
// before the long polls end. The bounds are generous; this is no benchmark.
//
// It runs a proxy and two node processes over Redis rather than `strait dev`, whose
// nodes replicate __consumer_offsets between each other in the same process: apart,
// the proxy's own sockets, and so its connections to each node, can be told from
// /proc.
func TestUpstreamConnections(t *testing.T) {
	const (
		clients     = 2000
		perNode     = 2
		dialers     = 64 // clients setting up at once, to keep the test itself light
		longPoll    = 25 * time.Second
		fastRecords = 100
		fastBound   = 15 * time.Second // well before the long polls end
		timeout     = 60 * time.Second
	)
	requireFileDescriptors(t, clients+1000)
	c := StartCluster(t, ClusterNodes(2),
		ProxyArgs("--offsets-partitions", "2", "--upstream-connections-per-node", strconv.Itoa(perNode)))
	p, slowNode := c.Proxies[0], c.Nodes[0]
	const topic = "upstream"
	createTopic(t, p.Admin(t), topic, 4, timeout)
	slow, fast := partitionOn(t, c.Nodes[0], topic, 4, timeout), partitionOn(t, c.Nodes[1], topic, 4, timeout)
	t.Logf("partition %d on node 1 (long polls), %d on node 2 (traffic)", slow, fast)

	polls := startLongPolls(t, p.Addr(), clients, dialers, topic, slow, fast, longPoll, timeout)
	eventually(t, timeout, "the long polls waiting at node 1", func() bool {
		v, _ := metricValue(t, slowNode.AdminAddr(), seriesOf("strait_connections_inflight_requests", `listener="node-1"`))
		return v >= clients
	})
	if v, _ := metricValue(t, p.AdminAddr(), seriesOf("strait_connections_open", `tier="proxy"`)); v < clients {
		t.Fatalf("the proxy serves %v connections, want at least %d", v, clients)
	}
	checkUpstreamConns(t, c, perNode)

	started := time.Now()
	cl := p.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {fast: kgo.NewOffset().AtStart()}}))
	recs := make([]*kgo.Record, fastRecords)
	for i := range recs {
		recs[i] = &kgo.Record{Partition: fast, Value: fmt.Appendf(nil, "fast-%d", i)}
	}
	produceAll(t, cl, recs, timeout)
	got := consumeAll(t, cl, clients+fastRecords, timeout) // the raw clients produced one each first
	took := time.Since(started)
	t.Logf("produced %d and consumed %d records on node 2 in %s, with %d long polls waiting at node 1", fastRecords, len(got), took, clients)
	if took > fastBound {
		t.Fatalf("traffic to node 2 took %s with node 1 busy, want under %s", took, fastBound)
	}
	if v, _ := metricValue(t, slowNode.AdminAddr(), seriesOf("strait_connections_inflight_requests", `listener="node-1"`)); v < clients {
		t.Fatalf("only %v requests in flight at node 1 once node 2's traffic was done: the long polls ended first, so this proved nothing", v)
	}
	checkUpstreamConns(t, c, perNode)

	if err := polls.wait(longPoll + timeout); err != nil {
		t.Fatal(err)
	}
	checkUpstreamConns(t, c, perNode)
}

// requireFileDescriptors skips the test unless the process may open n descriptors,
// raising its soft limit toward the hard one if need be (Go raises it at start on Linux
// already).
func requireFileDescriptors(t *testing.T, n uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skipf("file descriptor limit unknown: %v", err)
	}
	if rl.Cur < n && rl.Max >= n {
		rl.Cur = n
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Skipf("raise the file descriptor limit to %d: %v", n, err)
		}
	}
	if rl.Cur < n {
		t.Skipf("file descriptor limit %d, hard %d: the test needs %d", rl.Cur, rl.Max, n)
	}
}

// partitionOn returns a partition of topic that node holds, from the partition
// directories in its data dir.
func partitionOn(t *testing.T, node *Process, topic string, partitions int, timeout time.Duration) int32 {
	t.Helper()
	var found int32 = -1
	eventually(t, timeout, fmt.Sprintf("a partition of %s on %s", topic, node.Name()), func() bool {
		for i := range partitions {
			if _, err := os.Stat(filepath.Join(node.DataDir(), fmt.Sprintf("%s-%d", topic, i))); err == nil {
				found = int32(i)
				return true
			}
		}
		return false
	})
	return found
}

// checkUpstreamConns counts the proxy's established connections to each node, from its
// file descriptors and /proc/net/tcp, and checks each is at most perNode and agrees
// with what the proxy reports as strait_upstream_connections.
func checkUpstreamConns(t *testing.T, c *Cluster, perNode int) {
	t.Helper()
	proxy := c.Proxies[0]
	sockets := socketInodes(t, proxy.current().cmd.Process.Pid)
	for _, node := range c.Nodes {
		n := establishedTo(t, node.Addr(), sockets)
		reported, _ := metricValue(t, proxy.AdminAddr(), seriesOf("strait_upstream_connections", `peer="`+node.Addr()+`"`))
		t.Logf("%s (%s): the proxy holds %d connections, reports %v", node.Name(), node.Addr(), n, reported)
		if n > perNode || n == 0 {
			t.Fatalf("the proxy holds %d connections to %s, want 1 to %d", n, node.Name(), perNode)
		}
		if int(reported) != n {
			t.Fatalf("strait_upstream_connections reports %v connections to %s, /proc shows %d", reported, node.Name(), n)
		}
	}
}

// socketInodes returns the inodes of the sockets process pid holds.
func socketInodes(t *testing.T, pid int) map[string]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	inodes := make(map[string]bool, len(fds))
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	return inodes
}

// establishedTo counts the established TCP connections to addr among sockets, from
// /proc/net/tcp (sl, local, remote, state, queues, timer, retransmits, uid, timeout,
// inode, ...).
func establishedTo(t *testing.T, addr string, sockets map[string]bool) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	portNum, _ := strconv.Atoi(port)
	remote := fmt.Sprintf(":%04X", portNum)
	table, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(table)) {
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasSuffix(f[2], remote) && f[3] == "01" && sockets[f[9]] {
			n++
		}
	}
	return n
}

// seriesOf matches the /metrics line of series name with the given label.
func seriesOf(name, label string) func(string) bool {
	return func(line string) bool {
		return strings.HasPrefix(line, name+"{") && strings.Contains(line, label)
	}
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// longPolls are raw client connections, each waiting for the answer to one Fetch.
type longPolls struct {
	wg       sync.WaitGroup
	answered atomic.Int64
	mu       sync.Mutex
	errs     []error
}

func (lp *longPolls) fail(err error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.errs = append(lp.errs, err)
}

// wait waits for every long poll to be answered, and reports the first failures.
func (lp *longPolls) wait(timeout time.Duration) error {
	done := make(chan struct{})
	go func() {
		lp.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("long polls not all answered within %s: %d answered", timeout, lp.answered.Load())
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if len(lp.errs) > 0 {
		return fmt.Errorf("%d of the clients failed, first: %w", len(lp.errs), errors.Join(lp.errs[:min(3, len(lp.errs))]...))
	}
	return nil
}

// startLongPolls opens n client connections to addr, dialers at a time. Each sends
// ApiVersions, Metadata for topic and a Produce of one record to partition fast, then a
// Fetch of partition slow from its end that waits up to maxWait for a record. It
// returns once every Fetch is sent; the answers are awaited in the background.
func startLongPolls(t *testing.T, addr string, n, dialers int, topic string, slow, fast int32, maxWait, timeout time.Duration) *longPolls {
	t.Helper()
	lp := &longPolls{}
	sent := make(chan struct{}, n)
	slots := make(chan struct{}, dialers)
	batch := oneRecordBatch([]byte("from a raw client"))
	for i := range n {
		lp.wg.Add(1)
		go func() {
			defer lp.wg.Done()
			slots <- struct{}{}
			rc, err := setUpClient(addr, fmt.Sprintf("upstream-%d", i), topic, fast, batch, timeout+maxWait)
			if err == nil {
				err = rc.send(fetchFromEnd(topic, slow, maxWait))
			}
			<-slots
			sent <- struct{}{}
			if err != nil {
				lp.fail(fmt.Errorf("client %d: %w", i, err))
				return
			}
			defer rc.nc.Close()
			if err := rc.awaitFetch(); err != nil {
				lp.fail(fmt.Errorf("client %d: %w", i, err))
				return
			}
			lp.answered.Add(1)
		}()
	}
	for range n {
		select {
		case <-sent:
		case <-time.After(timeout):
			t.Fatalf("the clients did not all send their fetch within %s", timeout)
		}
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if len(lp.errs) > 0 {
		t.Fatalf("%d clients failed to set up, first: %v", len(lp.errs), lp.errs[0])
	}
	return lp
}

// rawKafka is a hand-driven client connection: requests at non-flexible versions, so
// that every response header is a correlation id alone.
type rawKafka struct {
	nc     net.Conn
	br     *bufio.Reader
	format *kmsg.RequestFormatter
	corr   int32
	sent   kmsg.Request
}

// setUpClient dials addr and does what a client does before consuming: ApiVersions,
// Metadata, and here a Produce of batch to partition of topic.
func setUpClient(addr, clientID, topic string, partition int32, batch []byte, lifetime time.Duration) (*rawKafka, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(lifetime))
	rc := &rawKafka{nc: nc, br: bufio.NewReaderSize(nc, 4<<10), format: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(1)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(3)
	produce.Acks, produce.TimeoutMillis = 1, 10_000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition, pp.Records = partition, batch
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	for _, req := range []kmsg.Request{kmsg.NewPtrApiVersionsRequest(), meta, produce} {
		resp, err := rc.roundTrip(req)
		if err != nil {
			nc.Close()
			return nil, err
		}
		if pr, ok := resp.(*kmsg.ProduceResponse); ok {
			if code := pr.Topics[0].Partitions[0].ErrorCode; code != 0 {
				nc.Close()
				return nil, fmt.Errorf("produce: error code %d", code)
			}
		}
	}
	return rc, nil
}

// fetchFromEnd is a Fetch v4 of partition of topic from offset 0, which waits up to
// maxWait for a first byte: nothing is ever produced there.
func fetchFromEnd(topic string, partition int32, maxWait time.Duration) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(4)
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(maxWait.Milliseconds())
	req.MinBytes, req.MaxBytes = 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.PartitionMaxBytes = partition, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	return req
}

func (rc *rawKafka) roundTrip(req kmsg.Request) (kmsg.Response, error) {
	if err := rc.send(req); err != nil {
		return nil, err
	}
	return rc.recv()
}

func (rc *rawKafka) send(req kmsg.Request) error {
	rc.corr++
	rc.sent = req
	_, err := rc.nc.Write(rc.format.AppendRequest(nil, req, rc.corr))
	return err
}

// recv reads the answer to the last request sent.
func (rc *rawKafka) recv() (kmsg.Response, error) {
	var size [4]byte
	if _, err := io.ReadFull(rc.br, size[:]); err != nil {
		return nil, fmt.Errorf("%s: %w", kmsg.NameForKey(rc.sent.Key()), err)
	}
	payload := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rc.br, payload); err != nil {
		return nil, fmt.Errorf("%s: %w", kmsg.NameForKey(rc.sent.Key()), err)
	}
	if len(payload) < 4 || int32(binary.BigEndian.Uint32(payload)) != rc.corr {
		return nil, fmt.Errorf("%s: answer is not for correlation id %d", kmsg.NameForKey(rc.sent.Key()), rc.corr)
	}
	resp := rc.sent.ResponseKind()
	resp.SetVersion(rc.sent.GetVersion())
	if err := resp.ReadFrom(payload[4:]); err != nil {
		return nil, fmt.Errorf("%s: %w", kmsg.NameForKey(rc.sent.Key()), err)
	}
	return resp, nil
}

// awaitFetch reads the answer to the long poll, which must be empty and without error.
func (rc *rawKafka) awaitFetch() error {
	resp, err := rc.recv()
	if err != nil {
		return err
	}
	fr := resp.(*kmsg.FetchResponse)
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		return fmt.Errorf("fetch: answer has %d topics", len(fr.Topics))
	}
	if code := fr.Topics[0].Partitions[0].ErrorCode; code != 0 {
		return fmt.Errorf("fetch: error code %d", code)
	}
	return nil
}
