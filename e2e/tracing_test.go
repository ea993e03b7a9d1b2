package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestTracingAcrossProcesses runs Strait as deployed (redis-server, three nodes, a
// proxy), every process exporting spans over OTLP/HTTP to a receiver in the test, and
// follows requests through them:
//
//   - a produce to an RF=3 partition is one trace: the proxy's span, the forwarded
//     piece under it, the leader's request span under the piece, and the append and
//     acks=all wait under that, the wait linked to a fetch of each follower that moved
//     the high watermark past the batch, whose leader-side span is a child of the
//     follower's own fetch span;
//   - a group member's join, sync and commit get coordinator spans, and the commit's
//     write to __consumer_offsets is a child of the commit;
//   - a record carrying a W3C traceparent header links the proxy's produce span to
//     that trace (producer-to-consumer tracing).
//
// Checks: issue 11; DESIGN.md "Strait-to-Strait requests carry context".
func TestTracingAcrossProcesses(t *testing.T) {
	const (
		topic = "traced"
		group = "traced-group"
	)
	recv := newOTLPReceiver(t)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // export within a tenth of a second
	c := StartCluster(t, ClusterNodes(3),
		ClusterArgs("--traces-exporter=otlp", "--otlp-endpoint="+recv.url, "--traces-sampler=always_on"),
		ProxyArgs(fastRebalance, "--offsets-partitions=2"))
	adm := c.Admin(t, 0)
	createTopicRF(t, adm, topic, 1, 3)
	waitTopicReady(t, adm, topic, 1, clusterTimeout)

	t.Run("produce", func(t *testing.T) {
		producer := c.Client(t, 0, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic))
		produceAll(t, producer, []*kgo.Record{{Value: []byte("one")}}, clusterTimeout)
		checkProduceTrace(t, recv, topic)
	})
	t.Run("group", func(t *testing.T) {
		commitSome(t, c, 0, group, topic, 1)
		checkGroupSpans(t, recv, group)
	})
	t.Run("record traceparent", func(t *testing.T) {
		const traceID, spanID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
		producer := c.Client(t, 0, kgo.DefaultProduceTopic(topic))
		rec := &kgo.Record{Value: []byte("linked"), Headers: []kgo.RecordHeader{
			{Key: "traceparent", Value: []byte("00-" + traceID + "-" + spanID + "-01")},
		}}
		produceAll(t, producer, []*kgo.Record{rec}, clusterTimeout)
		recv.await(t, "a Produce proxy span linked to the record's trace", func(spans []span) error {
			for _, s := range spans {
				if s.name == "Produce proxy" && slices.ContainsFunc(s.links, func(l spanRef) bool { return l.trace == traceID && l.span == spanID }) {
					return nil
				}
			}
			return fmt.Errorf("no Produce proxy span links to %s/%s", traceID, spanID)
		})
	})
}

// checkProduceTrace finds the trace of the produce to topic and checks its shape. The
// leader is the node the proxy forwarded to (Metadata names the proxy as leader).
func checkProduceTrace(t *testing.T, recv *otlpReceiver, topic string) {
	t.Helper()
	recv.await(t, "the produce's trace across proxy, leader and followers", func(spans []span) error {
		byID := map[string]span{}
		for _, s := range spans {
			byID[s.id] = s
		}
		root, ok := find(spans, func(s span) bool { return s.name == "Produce proxy" && s.attrs["messaging.destination.name"] == topic })
		if !ok {
			return fmt.Errorf("no Produce proxy span for %s", topic)
		}
		if root.parent != "" {
			return fmt.Errorf("the proxy's span has a parent %s; the client sent none", root.parent)
		}
		piece, ok := childOf(spans, root, func(s span) bool { return strings.HasPrefix(s.name, "Produce to ") })
		if !ok {
			return fmt.Errorf("no piece span Produce to <node> under the proxy's")
		}
		leaderName := "node-" + strings.TrimPrefix(piece.name, "Produce to ")
		nodeSpan, ok := childOf(spans, piece, func(s span) bool { return s.name == "Produce node" && s.instance == leaderName })
		if !ok {
			return fmt.Errorf("no Produce node span of %s under the piece", leaderName)
		}
		if _, ok := childOf(spans, nodeSpan, func(s span) bool { return s.name == "append "+topic+"-0" }); !ok {
			return fmt.Errorf("no append span under the leader's")
		}
		wait, ok := childOf(spans, nodeSpan, func(s span) bool { return s.name == "acks=all wait "+topic+"-0" })
		if !ok {
			return fmt.Errorf("no acks=all wait span under the leader's")
		}
		followers := map[string]bool{}
		for _, l := range wait.links {
			fetch, ok := byID[l.span]
			if !ok || fetch.name != "Fetch node" || fetch.instance != leaderName {
				continue // not exported yet, or not a leader's fetch span
			}
			own, ok := byID[fetch.parent]
			if ok && strings.HasPrefix(own.name, "replica fetch from ") && own.instance != leaderName && own.trace == fetch.trace {
				followers[own.instance] = true
			}
		}
		if len(followers) != 2 {
			return fmt.Errorf("the wait links to fetches of followers %v (links %v); want both followers, each fetch a child of the follower's own span", followers, wait.links)
		}
		return nil
	})
}

// checkGroupSpans checks the coordinator's spans of a member's join, sync and commit.
func checkGroupSpans(t *testing.T, recv *otlpReceiver, group string) {
	t.Helper()
	recv.await(t, "coordinator spans of "+group, func(spans []span) error {
		for _, name := range []string{"join " + group, "sync " + group, "commit " + group} {
			s, ok := find(spans, func(s span) bool { return s.name == name })
			if !ok {
				return fmt.Errorf("no %q span", name)
			}
			if s.attrs["messaging.consumer.group.name"] != group {
				return fmt.Errorf("%q names group %q", name, s.attrs["messaging.consumer.group.name"])
			}
			if !strings.HasPrefix(s.instance, "127.0.0.1:") { // a proxy's instance is its listen address
				return fmt.Errorf("%q comes from %s, not the proxy", name, s.instance)
			}
		}
		commit, _ := find(spans, func(s span) bool { return s.name == "commit "+group })
		if _, ok := childOf(spans, commit, func(s span) bool { return strings.HasPrefix(s.name, "write __consumer_offsets-") }); !ok {
			return fmt.Errorf("no write to __consumer_offsets under the commit")
		}
		if _, ok := find(spans, func(s span) bool { return s.name == "rebalance "+group }); !ok {
			return fmt.Errorf("no rebalance span")
		}
		return nil
	})
}

// span is what the test keeps of an exported span.
type span struct {
	trace, id, parent string
	name              string
	instance          string // the exporting process's service.instance.id
	attrs             map[string]string
	links             []spanRef
}

type spanRef struct{ trace, span string }

func find(spans []span, match func(span) bool) (span, bool) {
	for _, s := range spans {
		if match(s) {
			return s, true
		}
	}
	return span{}, false
}

func childOf(spans []span, parent span, match func(span) bool) (span, bool) {
	return find(spans, func(s span) bool { return s.parent == parent.id && s.trace == parent.trace && match(s) })
}

// otlpReceiver is an OTLP/HTTP traces endpoint that keeps what it is sent.
type otlpReceiver struct {
	url string
	mu  sync.Mutex
	got []span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *otlpReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var export collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &export)
	}
	if req.URL.Path != "/v1/traces" || err != nil {
		http.Error(w, fmt.Sprintf("path %s: %v", req.URL.Path, err), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range export.GetResourceSpans() {
		instance := attrValue(rs.GetResource().GetAttributes(), "service.instance.id")
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.got = append(r.got, decodeSpan(s.GetTraceId(), s.GetSpanId(), s.GetParentSpanId(), s.GetName(), instance, s.GetAttributes(), s.GetLinks()))
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func decodeSpan(traceID, spanID, parentID []byte, name, instance string, attrs []*commonpb.KeyValue, links []*tracepb.Span_Link) span {
	s := span{trace: hex.EncodeToString(traceID), id: hex.EncodeToString(spanID), name: name, instance: instance, attrs: map[string]string{}}
	if len(parentID) > 0 {
		s.parent = hex.EncodeToString(parentID)
	}
	for _, kv := range attrs {
		s.attrs[kv.GetKey()] = anyValue(kv.GetValue())
	}
	for _, l := range links {
		s.links = append(s.links, spanRef{trace: hex.EncodeToString(l.GetTraceId()), span: hex.EncodeToString(l.GetSpanId())})
	}
	return s
}

// await polls what was received until check passes, failing the test after a while.
func (r *otlpReceiver) await(t *testing.T, what string, check func([]span) error) {
	t.Helper()
	Eventually(t, clusterTimeout, func(context.Context) error {
		r.mu.Lock()
		spans := slices.Clone(r.got)
		r.mu.Unlock()
		if err := check(spans); err != nil {
			return fmt.Errorf("%s: %w (of %d spans received)", what, err, len(spans))
		}
		return nil
	})
}

func attrValue(attrs []*commonpb.KeyValue, key string) string {
	for _, kv := range attrs {
		if kv.GetKey() == key {
			return anyValue(kv.GetValue())
		}
	}
	return ""
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	}
	return v.String()
}

// createTopicRF creates topic with the given partitions and replication factor.
func createTopicRF(t testing.TB, adm *kadm.Client, topic string, partitions int32, rf int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, rf, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}
