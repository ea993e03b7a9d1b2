package e2e

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Redirect mode (docs/architecture.md, "Proxy modes"): the proxy only bootstraps. Metadata names
// the nodes as partition leaders, at the addresses they advertise; clients produce and
// fetch straight to the nodes, and what they send "any broker" (Metadata,
// InitProducerId, FindCoordinator) a node relays to a proxy, so every broker tells
// them the same. Groups stay on the proxies: FindCoordinator names one.

// TestRedirectDev runs redirect mode in one `strait dev` process with three nodes,
// whose proxy (broker 0) relays in process.
func TestRedirectDev(t *testing.T) {
	p := StartDev(t, Nodes(3), Args("--mode", "redirect", fastRebalance))
	checkRedirect(t, redirectCluster{
		proxy:  p,
		nodes:  map[int32]string{1: "", 2: "", 3: ""}, // dev picks the nodes' ports
		admins: []string{p.AdminAddr()},
	})
}

// TestRedirectCluster runs redirect mode as deployed: three `strait node` processes
// and one `strait proxy` over Redis; nodes relay to the proxy over the network.
func TestRedirectCluster(t *testing.T) {
	c := StartCluster(t, ClusterNodes(3), ProxyArgs("--mode", "redirect", fastRebalance, "--offsets-partitions", "3"))
	rc := redirectCluster{proxy: c.Proxies[0], nodes: map[int32]string{}}
	for i, n := range c.Nodes {
		rc.nodes[int32(i+1)] = n.Addr()
	}
	for _, p := range c.Straits() {
		rc.admins = append(rc.admins, p.AdminAddr())
	}
	checkRedirect(t, rc)
}

// redirectCluster is a Strait cluster in redirect mode, as a test sees it.
type redirectCluster struct {
	proxy  *Process         // the one proxy: clients' bootstrap
	nodes  map[int32]string // node id -> advertised address; "" where the test cannot know it
	admins []string         // every process's admin address, for /metrics
}

const redirectRecords = 300

func checkRedirect(t *testing.T, rc redirectCluster) {
	const topic, partitions, group = "redirect", 3, "redirect-group"
	createTopic(t, rc.proxy.Admin(t), topic, partitions, groupTimeout)
	brokers := checkRedirectMetadata(t, rc, topic, partitions)
	for id := range rc.nodes {
		checkNodeAnswersClients(t, rc, brokers, id, topic, group)
	}

	acked := produceSpread(t, rc.proxy, topic, partitions, redirectRecords) // idempotent, acks=all

	consumer := rc.proxy.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	plain := newConsumedSet(acked)
	for _, r := range pollExactly(t, consumer, redirectRecords, groupTimeout) {
		if err := plain.add(r); err != nil {
			t.Fatalf("plain consumer: %v", err)
		}
	}
	consumer.Close()

	consumeAsGroup(t, rc, group, topic, acked)
	checkKcatRedirect(t, rc, brokers)
	checkRequestsWentToNodes(t, rc)
}

// checkRedirectMetadata asks the proxy for topic's metadata and checks that the nodes
// lead every partition at the addresses they advertise, the proxy listed beside them.
// It returns every broker's address by id.
func checkRedirectMetadata(t *testing.T, rc redirectCluster, topic string, partitions int) map[int32]string {
	t.Helper()
	cl := rc.proxy.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	var resp *kmsg.MetadataResponse
	err := pollUntil(ctx, nil, func(ctx context.Context) error {
		var err error
		resp, err = requestMetadata(ctx, cl.SeedBrokers()[0], topic)
		if err != nil {
			return err
		}
		if n := len(resp.Topics[0].Partitions); n != partitions {
			return fmt.Errorf("%d partitions, want %d", n, partitions)
		}
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				return fmt.Errorf("partition %d: error %d", p.Partition, p.ErrorCode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Metadata from the proxy: %v", err)
	}
	brokers := brokerAddrs(resp)
	proxies := 0
	for id, addr := range brokers {
		want, isNode := rc.nodes[id]
		switch {
		case !isNode && addr == rc.proxy.Addr():
			proxies++
		case !isNode:
			t.Errorf("broker %d at %s is neither a node nor the proxy", id, addr)
		case addr == rc.proxy.Addr() || (want != "" && addr != want):
			t.Errorf("node %d listed at %s, want its own address %s", id, addr, cmp.Or(want, "(not the proxy's)"))
		}
	}
	if proxies != 1 || len(brokers) != len(rc.nodes)+1 {
		t.Errorf("brokers %v: want the %d nodes and the proxy %s", brokers, len(rc.nodes), rc.proxy.Addr())
	}
	for _, p := range resp.Topics[0].Partitions {
		if _, ok := rc.nodes[p.Leader]; !ok {
			t.Errorf("partition %d led by broker %d, want a node", p.Partition, p.Leader)
		}
	}
	t.Logf("Metadata from the proxy: brokers %v, leaders %v", brokers, leadersOf(resp))
	if t.Failed() {
		t.FailNow() // what follows talks to the nodes Metadata names
	}
	return brokers
}

// checkNodeAnswersClients checks that node id answers an ordinary client as a broker:
// ApiVersions advertises Produce and Fetch at most v12 beside what the proxy serves,
// Metadata is the proxy's answer, and FindCoordinator names the proxy.
func checkNodeAnswersClients(t *testing.T, rc redirectCluster, brokers map[int32]string, id int32, topic, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	node := rc.proxy.Client(t, kgo.SeedBrokers(brokers[id])).SeedBrokers()[0]

	avReq := kmsg.NewPtrApiVersionsRequest()
	avReq.ClientSoftwareName, avReq.ClientSoftwareVersion = "strait-e2e", "1" // a Broker's requests go as they are
	resp, err := node.Request(ctx, avReq)
	if err != nil {
		t.Fatalf("node %d: ApiVersions: %v", id, err)
	}
	av := resp.(*kmsg.ApiVersionsResponse)
	if av.ErrorCode != 0 {
		t.Fatalf("node %d: ApiVersions: error %d", id, av.ErrorCode)
	}
	max := map[int16]int16{}
	for _, k := range av.ApiKeys {
		max[k.ApiKey] = k.MaxVersion
	}
	if max[0] != 12 || max[1] != 12 {
		t.Errorf("node %d advertises Produce v%d and Fetch v%d, want v12, the last to name topics", id, max[0], max[1])
	}
	for _, key := range []kmsg.Key{kmsg.Metadata, kmsg.FindCoordinator, kmsg.InitProducerID, kmsg.DescribeConfigs, kmsg.CreateTopics} {
		if _, ok := max[int16(key)]; !ok {
			t.Errorf("node %d does not advertise %s", id, key.Name())
		}
	}

	fromProxy, err := requestMetadata(ctx, rc.proxy.Client(t).SeedBrokers()[0], topic)
	if err != nil {
		t.Fatalf("Metadata from the proxy: %v", err)
	}
	fromNode, err := requestMetadata(ctx, node, topic)
	if err != nil {
		t.Fatalf("node %d: Metadata: %v", id, err)
	}
	if a, b := fmt.Sprint(brokerAddrs(fromNode), leadersOf(fromNode)), fmt.Sprint(brokerAddrs(fromProxy), leadersOf(fromProxy)); a != b {
		t.Errorf("node %d: Metadata says %s, the proxy %s", id, a, b)
	}

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = group, []string{group}
	resp, err = node.Request(ctx, fc)
	if err != nil {
		t.Fatalf("node %d: FindCoordinator: %v", id, err)
	}
	c := resp.(*kmsg.FindCoordinatorResponse).Coordinators[0]
	if addr := net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))); c.ErrorCode != 0 || addr != rc.proxy.Addr() {
		t.Errorf("node %d: FindCoordinator(%s) names broker %d at %s (error %d), want the proxy at %s", id, group, c.NodeID, addr, c.ErrorCode, rc.proxy.Addr())
	}
}

// consumeAsGroup consumes every acknowledged record as the one member of group, whose
// group requests go to the coordinator FindCoordinator names, and checks that it
// committed up to the end.
func consumeAsGroup(t *testing.T, rc redirectCluster, group, topic string, acked []*kgo.Record) {
	t.Helper()
	set := newConsumedSet(acked)
	m := newGroupMember(t, rc.proxy, "redirect-member", group, topic, set)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m.pollOnce(ctx) {
		}
	}()
	set.waitAllConsumed(t, groupTimeout)
	cancel()
	<-done
	m.commit(context.Background(), m.cl)
	checkCommittedAtEnd(t, rc.proxy.Admin(t), group, topic, groupTimeout)
	m.cl.Close()
	t.Logf("%s", m.stats())
}

// checkKcatRedirect has kcat (librdkafka), bootstrapped at the proxy, list the cluster,
// produce and consume.
func checkKcatRedirect(t *testing.T, rc redirectCluster, brokers map[int32]string) {
	t.Helper()
	kcat := requireTool(t, "kcat")
	const topic = "redirect-kcat"
	var lines []string
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("line-%d", i))
	}
	input := strings.Join(lines, "\n") + "\n"
	runTool(t, input, kcat, "-b", rc.proxy.Addr(), "-P", "-t", topic, "-p", "0")
	if out := runTool(t, "", kcat, "-b", rc.proxy.Addr(), "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q"); out != input {
		t.Fatalf("kcat -C read:\n%s\nwant:\n%s", out, input)
	}

	out := runTool(t, "", kcat, "-b", rc.proxy.Addr(), "-L", "-t", topic)
	for id := range rc.nodes {
		if want := fmt.Sprintf("broker %d at %s", id, brokers[id]); !strings.Contains(out, want) {
			t.Errorf("kcat -L lacks %q:\n%s", want, out)
		}
	}
	var leader int32 = -1
	for line := range strings.Lines(out) {
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "partition 0, leader %d,", &leader); err == nil {
			break
		}
	}
	if _, ok := rc.nodes[leader]; !ok {
		t.Errorf("kcat -L: partition 0 led by %d, want a node:\n%s", leader, out)
	}
}

// checkRequestsWentToNodes reads every process's request counts: clients produced and
// fetched only at nodes, and sent group requests only to the proxy; nodes relayed
// Metadata to it.
func checkRequestsWentToNodes(t *testing.T, rc redirectCluster) {
	t.Helper()
	for _, c := range []struct {
		api, tier string
		some      bool
	}{
		{"Produce", "proxy", false}, {"Fetch", "proxy", false},
		{"Produce", "node", true}, {"Fetch", "node", true}, {"Metadata", "node", true},
		{"JoinGroup", "proxy", true}, {"JoinGroup", "node", false},
		{"OffsetCommit", "proxy", true}, {"OffsetCommit", "node", false},
	} {
		n := 0.0
		for _, admin := range rc.admins {
			n += requestCount(t, admin, c.api, c.tier)
		}
		if (n > 0) != c.some {
			t.Errorf("%s requests at %ss: %v, want %s", c.api, c.tier, n, map[bool]string{true: "some", false: "none"}[c.some])
		}
	}
}

// requestCount sums strait_requests_total for api at tier, whatever the outcome.
func requestCount(t *testing.T, admin, api, tier string) float64 {
	t.Helper()
	sum := 0.0
	for line := range strings.Lines(httpGet(t, "http://"+admin+"/metrics")) {
		if !strings.HasPrefix(line, "strait_requests_total{") ||
			!strings.Contains(line, `api="`+api+`"`) || !strings.Contains(line, `tier="`+tier+`"`) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func requestMetadata(ctx context.Context, b *kgo.Broker, topic string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(topic)}}
	resp, err := b.Request(ctx, req)
	if err != nil {
		return nil, err
	}
	m := resp.(*kmsg.MetadataResponse)
	if len(m.Topics) != 1 || m.Topics[0].ErrorCode != 0 {
		return nil, fmt.Errorf("metadata of %s: %+v", topic, m.Topics)
	}
	return m, nil
}

// brokerAddrs returns a Metadata answer's brokers' addresses by id.
func brokerAddrs(resp *kmsg.MetadataResponse) map[int32]string {
	out := map[int32]string{}
	for _, b := range resp.Brokers {
		out[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	return out
}

// leadersOf returns the leader of each partition of a Metadata answer's first topic,
// in partition order.
func leadersOf(resp *kmsg.MetadataResponse) []int32 {
	ps := slices.Clone(resp.Topics[0].Partitions)
	slices.SortFunc(ps, func(a, b kmsg.MetadataResponseTopicPartition) int { return int(a.Partition - b.Partition) })
	var out []int32
	for _, p := range ps {
		out = append(out, p.Leader)
	}
	return out
}
