package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Fetching from the closest replica (KIP-392). Nodes 1, 2 and 3 run in racks a, b and
// c, and a topic's three partitions are replicated on all of them, each led by one. A
// consumer in rack b (kgo.Rack, Kafka's client.rack) reads every record produced, and
// the partitions led in racks a and c are read from node 2, their in-sync replica in
// rack b: in forward mode because the proxy sends the reads there, in redirect mode
// because their leaders answer PreferredReadReplica 2 and the client follows. Each
// node counts the partitions it answered to consumers by how
// (strait_node_consumer_reads_total), which is how the test sees who served.

const (
	rackTopic   = "racks"
	rackRecords = 3000
	clientRack  = "b"
	rackNode    = "2" // the node in clientRack
)

// TestRackAwareFetchForward runs three `strait node` processes with --rack a, b, c
// and a forward-mode proxy over Redis: the proxy picks node 2 for the consumer in
// rack b, and never tells the client of it.
func TestRackAwareFetchForward(t *testing.T) {
	c := StartCluster(t, ClusterNodes(3),
		NodeArgsAt(0, "--rack", "a"), NodeArgsAt(1, "--rack", "b"), NodeArgsAt(2, "--rack", "c"))
	createReplicatedTopic(t, c.Admin(t, 0), rackTopic, 3, 3, 2)
	waitISR(t, c, rackTopic, 3, 3, clusterTimeout)
	prober := newNodeProber(t, c)
	leaders := map[int32]string{}
	for p := range int32(3) {
		leaders[p] = strconv.Itoa(int(prober.mustLeaderOf(t, rackTopic, p, clusterTimeout)))
	}
	var admins []string
	for _, n := range c.Nodes {
		admins = append(admins, n.AdminAddr())
	}

	reads := consumeFromRack(t, c.Proxies[0], admins, leaders)
	if n := reads.sum("", "redirect"); n != 0 {
		t.Errorf("nodes answered %v preferred replicas; want none: the proxy does not pass the client's rack on", n)
	}
}

// TestRackAwareFetchRedirect runs `strait dev --nodes 3 --node-racks a,b,c` in redirect
// mode: the consumer fetches from the nodes, the leaders in racks a and c name node 2
// as PreferredReadReplica, and the client reads from it.
func TestRackAwareFetchRedirect(t *testing.T) {
	p := StartDev(t, Nodes(3), Args("--mode", "redirect", "--node-racks", "a,b,c"))
	createReplicatedTopic(t, p.Admin(t), rackTopic, 3, 3, 2)
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	resp, err := requestMetadata(ctx, p.Client(t).SeedBrokers()[0], rackTopic)
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	for _, b := range resp.Brokers {
		if want := map[int32]string{1: "a", 2: "b", 3: "c"}[b.NodeID]; want != "" && (b.Rack == nil || *b.Rack != want) {
			t.Errorf("broker %d listed in rack %v, want %s", b.NodeID, b.Rack, want)
		}
	}
	leaders := map[int32]string{}
	for i, id := range leadersOf(resp) {
		leaders[int32(i)] = strconv.Itoa(int(id))
	}

	reads := consumeFromRack(t, p, []string{p.AdminAddr()}, leaders)
	redirects := 0.0
	for _, node := range leaders {
		if node != rackNode {
			redirects += reads[readKey{node, "redirect"}]
		}
	}
	if redirects == 0 {
		t.Errorf("the leaders outside rack b answered no preferred replica (reads %v)", reads)
	}
}

// consumeFromRack produces rackRecords to rackTopic through bootstrap, reads them all
// back as a consumer in rack b, checks each was read once at the offset its
// acknowledgement gave, and checks from the nodes' metrics (admins) that node 2 served,
// as follower, most reads of the partitions other nodes lead (leaders: partition ->
// node id). It returns the reads counted while consuming.
func consumeFromRack(t *testing.T, bootstrap *Process, admins []string, leaders map[int32]string) consumerReads {
	t.Helper()
	otherLeaders := map[string]bool{}
	for _, node := range leaders {
		if node != rackNode {
			otherLeaders[node] = true
		}
	}
	if len(otherLeaders) == 0 {
		t.Fatalf("node %s leads every partition (%v): nothing to read from a follower", rackNode, leaders)
	}
	acked := produceSpread(t, bootstrap, rackTopic, len(leaders), rackRecords)

	before := readConsumerReads(t, admins)
	consumer := bootstrap.Client(t, kgo.ConsumeTopics(rackTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.Rack(clientRack))
	got := consumeAll(t, consumer, rackRecords, clusterTimeout)
	consumer.Close()
	checkDenseOffsets(t, got)
	checkSameRecords(t, acked, got)
	reads := readConsumerReads(t, admins).since(before)
	t.Logf("leaders %v; partitions answered to consumers while reading: %v", leaders, reads)

	fromFollower := reads[readKey{rackNode, "follower"}]
	fromOtherLeaders := 0.0
	for node := range otherLeaders {
		fromOtherLeaders += reads[readKey{node, "leader"}]
	}
	if fromFollower == 0 || fromFollower <= fromOtherLeaders {
		t.Errorf("node %s (rack %s) read %v partitions as follower, their leaders %v: want node %s to serve most",
			rackNode, clientRack, fromFollower, fromOtherLeaders, rackNode)
	}
	return reads
}

// readKey is a series of strait_node_consumer_reads_total: a node, and how it answered
// (leader, follower or redirect).
type readKey struct{ node, as string }

type consumerReads map[readKey]float64

// readConsumerReads reads strait_node_consumer_reads_total from every admin server.
func readConsumerReads(t *testing.T, admins []string) consumerReads {
	t.Helper()
	out := consumerReads{}
	for _, admin := range admins {
		for line := range strings.Lines(httpGet(t, "http://"+admin+"/metrics")) {
			if !strings.HasPrefix(line, "strait_node_consumer_reads_total{") {
				continue
			}
			fields := strings.Fields(line)
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			out[readKey{metricLabel(line, "node"), metricLabel(line, "as")}] += v
		}
	}
	return out
}

// since is what was counted after before.
func (r consumerReads) since(before consumerReads) consumerReads {
	out := consumerReads{}
	for k, v := range r {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// sum adds up the series of node ("" for every node) answered as.
func (r consumerReads) sum(node, as string) float64 {
	n := 0.0
	for k, v := range r {
		if (node == "" || k.node == node) && k.as == as {
			n += v
		}
	}
	return n
}

// metricLabel is the value of label name in a Prometheus text line, "" if absent.
func metricLabel(line, name string) string {
	for _, sep := range []string{"{", ","} {
		if _, rest, ok := strings.Cut(line, sep+name+`="`); ok {
			value, _, _ := strings.Cut(rest, `"`)
			return value
		}
	}
	return ""
}
