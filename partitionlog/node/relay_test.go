package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
)

// proxyAPIs stands for a proxy's handler table: Produce and Fetch past v12 (topic ids),
// OffsetForLeaderEpoch from v2, and APIs only proxies serve.
var proxyAPIs = wire.APITable{
	0:  {Min: 3, Max: 13}, // Produce
	1:  {Min: 4, Max: 18}, // Fetch
	2:  {Min: 1, Max: 6},  // ListOffsets
	3:  {Min: 0, Max: 13}, // Metadata
	10: {Min: 0, Max: 6},  // FindCoordinator
	18: {Min: 0, Max: 4},  // ApiVersions
	22: {Min: 0, Max: 5},  // InitProducerId
	23: {Min: 2, Max: 4},  // OffsetForLeaderEpoch
}

// relayNode is node 1 serving ordinary clients on its own listener, relaying what it
// does not own to relay.
func relayNode(t *testing.T, h *nodeHarness, relay func(addr string) Relay) (string, *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	cfg := Config{ID: 1, DataDir: t.TempDir(), RelayAPIs: proxyAPIs}
	if relay != nil {
		cfg.Relay = relay(addr)
	}
	s, err := New(cfg, h.cache, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ws := &wire.Server{Handler: s, Versions: s.APIs().Versions}
	go ws.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws.Shutdown(ctx)
		s.Close()
	})
	return addr, s
}

// TestRelayAdvertisedAPIs: a node with a relay advertises, in ApiVersions, its own APIs
// at its own versions (Produce and Fetch at most v12, which name topics) and every other
// API the proxy serves at the proxy's versions; one without advertises its own alone.
func TestRelayAdvertisedAPIs(t *testing.T) {
	h := newNodeHarness(t)
	refuse := func(string) Relay {
		return func(context.Context, *wire.Request) (kmsg.Response, error) { return nil, errors.New("unused") }
	}
	want := wire.APITable{
		0: {Min: 3, Max: 12}, 1: {Min: 4, Max: 12}, 2: {Min: 1, Max: 6}, 18: {Min: 0, Max: 4},
		21: {Min: 0, Max: 2}, 23: {Min: 0, Max: 4}, 27: {Min: 0, Max: 1}, 61: {Min: 0, Max: 0}, // the node's own
		3: {Min: 0, Max: 13}, 10: {Min: 0, Max: 6}, 22: {Min: 0, Max: 5}, // relayed
	}
	for _, tc := range []struct {
		name  string
		relay func(string) Relay
		want  wire.APITable
	}{
		{"with relay", refuse, want},
		{"without relay", nil, APIs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, s := relayNode(t, h, tc.relay)
			if !maps.Equal(s.APIs(), tc.want) {
				t.Fatalf("APIs() = %v, want %v", s.APIs(), tc.want)
			}
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version, req.ClientSoftwareName, req.ClientSoftwareVersion = 4, "test", "1"
			resp := do[*kmsg.ApiVersionsResponse](t, dial(t, addr), req)
			got, listed := wire.APITable{}, wire.APITable{}
			for _, k := range resp.ApiKeys {
				got[k.ApiKey] = wire.APIRange{Min: k.MinVersion, Max: k.MaxVersion}
			}
			for k, r := range tc.want {
				listed[k] = wire.Advertised(k, r) // Produce from v0
			}
			if resp.ErrorCode != 0 || !maps.Equal(got, listed) {
				t.Fatalf("ApiVersions: error %d, keys %v; want %v", resp.ErrorCode, got, listed)
			}
		})
	}
}

// TestRelayServesOrdinaryClients: a franz-go client that knows only the node produces
// idempotently with acks=all and consumes, as it would in redirect mode. Its Metadata
// and InitProducerId reach the relay as the client sent them, client id included;
// Produce, ListOffsets and Fetch are the node's own.
func TestRelayServesOrdinaryClients(t *testing.T) {
	h := newNodeHarness(t)
	const topic, clientID, records = "relayed", "app-7", 10
	h.createTopic(t, topic, 1, 0)
	var mu sync.Mutex
	relayed := map[string]int{} // "api client-id" -> count
	addr, _ := relayNode(t, h, func(addr string) Relay {
		return func(_ context.Context, req *wire.Request) (kmsg.Response, error) {
			mu.Lock()
			relayed[kmsg.NameForKey(req.Header.Key)+" "+req.Header.ClientID]++
			mu.Unlock()
			return fakeProxy(addr, topic, req.Body)
		}
	})

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(clientID),
		kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range records {
		r := &kgo.Record{Value: []byte(strconv.Itoa(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if r.Offset != int64(i) || r.ProducerID != 42 {
			t.Fatalf("record %d acknowledged at offset %d by producer %d, want offset %d by 42", i, r.Offset, r.ProducerID, i)
		}
	}
	var got []string
	for len(got) < records && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if ctx.Err() == nil {
				t.Errorf("fetch: %v", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("consumed %v, want 0 to %d in order", got, records-1)
		}
	}
	if len(got) != records {
		t.Fatalf("consumed %d records, want %d", len(got), records)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, api := range []string{"Metadata", "InitProducerID"} {
		if relayed[api+" "+clientID] == 0 {
			t.Errorf("%s was not relayed with client id %q; relayed: %v", api, clientID, relayed)
		}
	}
	if len(relayed) != 2 {
		t.Errorf("relayed %v, want Metadata and InitProducerID alone", relayed)
	}
}

// fakeProxy answers as a proxy in redirect mode would: node 1 at addr leads partition 0
// of topic, and idempotent producers get id 42.
func fakeProxy(addr, topic string, req kmsg.Request) (kmsg.Response, error) {
	switch req := req.(type) {
	case *kmsg.MetadataRequest:
		host, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: host, Port: int32(n)}}
		resp.ControllerID = 1
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = kmsg.StringPtr(topic)
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Leader, mp.Replicas, mp.ISR = 1, []int32{1}, []int32{1}
		mt.Partitions = append(mt.Partitions, mp)
		resp.Topics = append(resp.Topics, mt)
		return resp, nil
	case *kmsg.InitProducerIDRequest:
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = 42, 0
		return resp, nil
	}
	return nil, fmt.Errorf("the fake proxy does not serve %s", kmsg.NameForKey(req.Key()))
}

// TestRelayFailureClosesConnection: when no proxy answers, the node closes the client's
// connection, as a broker that cannot answer does, and the client asks another broker;
// a node without a relay refuses what it does not own the same way.
func TestRelayFailureClosesConnection(t *testing.T) {
	h := newNodeHarness(t)
	for _, tc := range []struct {
		name  string
		relay func(string) Relay
	}{
		{"relay fails", func(string) Relay {
			return func(context.Context, *wire.Request) (kmsg.Response, error) {
				return nil, errors.New("no live proxy")
			}
		}},
		{"no relay", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := relayNode(t, h, tc.relay)
			cl := dial(t, addr)
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 12
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if resp, err := cl.Do(ctx, req); err == nil {
				t.Fatalf("Metadata answered %+v, want the connection closed", resp)
			}
		})
	}
}
