package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMetricsAndClusterViewMatchKadm runs a workload on a cluster (three nodes, a
// proxy) and checks what operators read against what a Kafka client reads (kadm):
//
//   - the proxy's /metrics counts the produces by API and client id, and its group
//     metrics give each partition's committed offset and lag as kadm.Lag does;
//   - the nodes' /metrics give each partition's log start, high watermark and log end
//     (on its leader) as ListStartOffsets and ListEndOffsets do, and the ISR size;
//   - /v1/cluster, from the proxy and from a node, gives the same replicas, ISR,
//     offsets and group lag;
//   - /readyz turns unready naming Redis once redis-server is stopped.
//
// Checks: issue 11.
func TestMetricsAndClusterViewMatchKadm(t *testing.T) {
	const (
		topic      = "metered"
		group      = "metered-group"
		partitions = 2
		clientID   = "metered-producer"
	)
	c := StartCluster(t, ClusterNodes(3), ProxyArgs(fastRebalance, "--offsets-partitions=2"))
	adm := c.Admin(t, 0)
	createTopicRF(t, adm, topic, partitions, 3)
	waitTopicReady(t, adm, topic, partitions, clusterTimeout)

	producer := c.Client(t, 0, kgo.ClientID(clientID), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic))
	produceN := func(n int) {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("v")}
		}
		produceAll(t, producer, recs, clusterTimeout)
	}
	produceN(40)
	commitSome(t, c, 0, group, topic, 10)
	produceN(15) // the group lags by at least these

	t.Run("proxy request metrics", func(t *testing.T) {
		fams := scrapeMetrics(t, c.Proxies[0].AdminAddr())
		n := sumSeries(fams, "strait_requests_total", map[string]string{"api": "Produce", "tier": "proxy", "client_id": clientID})
		if n < 1 {
			t.Fatalf("strait_requests_total{api=Produce,tier=proxy,client_id=%s} = %v, want at least 1", clientID, n)
		}
		if h := sumHistogramCount(fams, "strait_request_duration_seconds", map[string]string{"api": "Produce", "tier": "proxy"}); h < n {
			t.Fatalf("strait_request_duration_seconds count %v < %v produces", h, n)
		}
	})

	t.Run("partition offsets", func(t *testing.T) {
		Eventually(t, clusterTimeout, func(ctx context.Context) error {
			starts, ends, err := startsAndEnds(ctx, adm, topic)
			if err != nil {
				return err
			}
			leaders := 0
			for _, node := range c.Nodes {
				fams, err := scrape(ctx, node.AdminAddr())
				if err != nil {
					return err
				}
				for p := int32(0); p < partitions; p++ {
					labels := map[string]string{"topic": topic, "partition": strconv.Itoa(int(p))}
					isr, leads := series(fams, "strait_partition_in_sync_replicas", labels)
					if !leads {
						continue // a follower's offsets may trail; the leader's are the partition's
					}
					leaders++
					hw, _ := series(fams, "strait_partition_high_watermark", labels)
					end, _ := series(fams, "strait_partition_log_end_offset", labels)
					start, _ := series(fams, "strait_partition_log_start_offset", labels)
					if int64(hw) != ends[p] || int64(end) != ends[p] || int64(start) != starts[p] || isr != 3 {
						return fmt.Errorf("%s partition %d on %s: metrics hw %v, end %v, start %v, isr %v; kadm end %d, start %d, isr 3",
							topic, p, node.Name(), hw, end, start, isr, ends[p], starts[p])
					}
				}
			}
			if leaders != partitions {
				return fmt.Errorf("%d partitions have a leader reporting in_sync_replicas, want %d", leaders, partitions)
			}
			return nil
		})
	})

	t.Run("group lag", func(t *testing.T) {
		Eventually(t, clusterTimeout, func(ctx context.Context) error {
			lags, err := adm.Lag(ctx, group)
			if err != nil {
				return err
			}
			fams, err := scrape(ctx, c.Proxies[0].AdminAddr())
			if err != nil {
				return err
			}
			l := lags[group]
			if err := l.Error(); err != nil {
				return err
			}
			checked := 0
			for _, m := range l.Lag.Sorted() {
				if m.Commit.At < 0 {
					continue
				}
				labels := map[string]string{"group": group, "topic": m.Topic, "partition": strconv.Itoa(int(m.Partition))}
				lag, ok := series(fams, "strait_group_lag", labels)
				committed, _ := series(fams, "strait_group_committed_offset", labels)
				if !ok || int64(lag) != m.Lag || int64(committed) != m.Commit.At {
					return fmt.Errorf("%s partition %d: metrics lag %v (found %v), committed %v; kadm lag %d, committed %d",
						m.Topic, m.Partition, lag, ok, committed, m.Lag, m.Commit.At)
				}
				checked++
			}
			if checked == 0 {
				return fmt.Errorf("kadm shows no committed offset for %s", group)
			}
			if st, _ := series(fams, "strait_group_state", map[string]string{"group": group, "state": l.State}); st != 1 {
				return fmt.Errorf("strait_group_state{state=%s} = %v, want 1", l.State, st)
			}
			return nil
		})
	})

	t.Run("cluster view", func(t *testing.T) {
		for _, p := range []*Process{c.Proxies[0], c.Nodes[0]} {
			Eventually(t, clusterTimeout, func(ctx context.Context) error {
				return clusterViewMatches(ctx, c, p, adm, topic, group)
			})
		}
	})

	t.Run("readyz names redis", func(t *testing.T) {
		c.Redis.Stop()
		waitReadyz(t, time.Now().Add(clusterTimeout), http.StatusServiceUnavailable, "redis", c.Proxies[0], c.Nodes[0])
		// Back, empty: the processes register again, and can release their leases
		// when the test stops them.
		c.Redis.Restart(t)
		waitReadyz(t, time.Now().Add(clusterTimeout), http.StatusOK, "", c.Proxies[0], c.Nodes[0])
	})
}

// clusterViewDoc is what the test reads of /v1/cluster.
type clusterViewDoc struct {
	Nodes  []struct{ ID int32 } `json:"nodes"`
	Topics []topicView          `json:"topics"`
	Groups []struct {
		Group   string `json:"group"`
		State   string `json:"state"`
		Members int    `json:"members"`
		Lag     []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Committed int64  `json:"committed"`
			Lag       int64  `json:"lag"`
		} `json:"lag"`
	} `json:"groups"`
	Errors []string `json:"errors"`
}

type topicView struct {
	Name       string `json:"name"`
	Partitions []struct {
		Partition      int32   `json:"partition"`
		Replicas       []int32 `json:"replicas"`
		ISR            []int32 `json:"isr"`
		LogStartOffset int64   `json:"log_start_offset"`
		HighWatermark  int64   `json:"high_watermark"`
	} `json:"partitions"`
}

// clusterViewMatches compares p's /v1/cluster with the routing metadata in Redis
// (replicas and ISR as node ids, which Metadata in forward mode names by proxies) and
// with kadm's view of topic's offsets and of group.
func clusterViewMatches(ctx context.Context, c *Cluster, p *Process, adm *kadm.Client, topic, group string) error {
	var doc clusterViewDoc
	if err := getJSON(ctx, "http://"+p.AdminAddr()+"/v1/cluster", &doc); err != nil {
		return fmt.Errorf("%s: %w", p.Name(), err)
	}
	if len(doc.Errors) > 0 {
		return fmt.Errorf("%s /v1/cluster errors: %v", p.Name(), doc.Errors)
	}
	if len(doc.Nodes) != 3 {
		return fmt.Errorf("%s /v1/cluster lists %d nodes, want 3", p.Name(), len(doc.Nodes))
	}
	states, err := partitionStates(ctx, c, topic)
	if err != nil {
		return err
	}
	starts, ends, err := startsAndEnds(ctx, adm, topic)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(doc.Topics, func(t topicView) bool { return t.Name == topic })
	if i < 0 {
		return fmt.Errorf("%s /v1/cluster has no topic %s", p.Name(), topic)
	}
	for _, got := range doc.Topics[i].Partitions {
		want := states[got.Partition]
		if !slices.Equal(sorted(got.Replicas), sorted(want.Replicas)) || !slices.Equal(sorted(got.ISR), want.ISR) ||
			got.HighWatermark != ends[got.Partition] || got.LogStartOffset != starts[got.Partition] {
			return fmt.Errorf("%s /v1/cluster partition %d: replicas %v isr %v start %d hw %d; Redis replicas %v isr %v, kadm start %d end %d",
				p.Name(), got.Partition, got.Replicas, got.ISR, got.LogStartOffset, got.HighWatermark,
				want.Replicas, want.ISR, starts[got.Partition], ends[got.Partition])
		}
	}
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return err
	}
	want := lags[group]
	for _, g := range doc.Groups {
		if g.Group != group {
			continue
		}
		if g.State != want.State || g.Members != len(want.Members) {
			return fmt.Errorf("%s /v1/cluster group %s: state %s, %d members; kadm %s, %d", p.Name(), group, g.State, g.Members, want.State, len(want.Members))
		}
		for _, l := range g.Lag {
			w, ok := want.Lag.Lookup(l.Topic, l.Partition)
			if !ok || w.Lag != l.Lag || w.Commit.At != l.Committed {
				return fmt.Errorf("%s /v1/cluster group %s %s-%d: committed %d lag %d; kadm %+v", p.Name(), group, l.Topic, l.Partition, l.Committed, l.Lag, w)
			}
		}
		return nil
	}
	return fmt.Errorf("%s /v1/cluster has no group %s", p.Name(), group)
}

func sorted(ids []int32) []int32 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// startsAndEnds lists topic's log start offsets and high watermarks by partition.
func startsAndEnds(ctx context.Context, adm *kadm.Client, topic string) (starts, ends map[int32]int64, err error) {
	s, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	e, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	starts, ends = map[int32]int64{}, map[int32]int64{}
	for p, o := range s[topic] {
		starts[p] = o.Offset
	}
	for p, o := range e[topic] {
		ends[p] = o.Offset
	}
	return starts, ends, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// scrape reads a process's /metrics.
func scrape(ctx context.Context, admin string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s/metrics: %w", admin, err)
	}
	return fams, nil
}

func scrapeMetrics(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fams, err := scrape(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// series returns the value of the first series of name whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		if labelsInclude(m, want) {
			return metricNumber(m), true
		}
	}
	return 0, false
}

// sumSeries adds up every series of name whose labels include want.
func sumSeries(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for _, m := range fams[name].GetMetric() {
		if labelsInclude(m, want) {
			sum += metricNumber(m)
		}
	}
	return sum
}

func sumHistogramCount(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for _, m := range fams[name].GetMetric() {
		if labelsInclude(m, want) {
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func metricNumber(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}

func labelsInclude(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
