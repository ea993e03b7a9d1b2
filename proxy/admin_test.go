package proxy

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
)

// newCreateTopic is one topic of a CreateTopics request; configs alternate name, value.
func newCreateTopic(name string, partitions int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(configs); i += 2 {
		rc := kmsg.NewCreateTopicsRequestTopicConfig()
		rc.Name, rc.Value = configs[i], kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, rc)
	}
	return rt
}

// withAssignment places partition 0 of rt on node.
func withAssignment(rt kmsg.CreateTopicsRequestTopic, node int32) kmsg.CreateTopicsRequestTopic {
	a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	a.Partition, a.Replicas = 0, []int32{node}
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	return rt
}

func createTopics(t *testing.T, cl *wire.Client, validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsResponse {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.ValidateOnly, req.Topics = 7, validateOnly, topics
	return do[*kmsg.CreateTopicsResponse](t, cl, req)
}

// metadataTopic asks for one topic by name (v12) and returns its answer.
func metadataTopic(t *testing.T, cl *wire.Client, name string, allowAutoCreate bool) kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version, req.AllowAutoTopicCreation = 12, allowAutoCreate
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, rt)
	resp := do[*kmsg.MetadataResponse](t, cl, req)
	if len(resp.Topics) != 1 {
		t.Fatalf("metadata for %q: %d topics answered", name, len(resp.Topics))
	}
	return resp.Topics[0]
}

func TestCreateTopics(t *testing.T) {
	c := startCluster(t, withDefaultPartitions(3))
	cl := dial(t, c.proxyAddr)
	c.createTopic(t, "existing", 1, nil)

	for _, tc := range []struct {
		name     string // the Kafka behaviour checked
		topic    kmsg.CreateTopicsRequestTopic
		wantCode int16
		wantN    int32 // partitions in the answer when created
	}{
		{"invalid name: INVALID_TOPIC_EXCEPTION", newCreateTopic("bad/name", 1, -1), kerr.InvalidTopicException.Code, 0},
		{"name of 250 characters: INVALID_TOPIC_EXCEPTION", newCreateTopic(strings.Repeat("a", 250), 1, -1), kerr.InvalidTopicException.Code, 0},
		{"existing topic: TOPIC_ALREADY_EXISTS", newCreateTopic("existing", 1, -1), kerr.TopicAlreadyExists.Code, 0},
		{"RF 2 on one node: INVALID_REPLICATION_FACTOR", newCreateTopic("rf2", 1, 2), kerr.InvalidReplicationFactor.Code, 0},
		{"unknown config: INVALID_CONFIG", newCreateTopic("badconf", 1, -1, "no.such.config", "1"), kerr.InvalidConfig.Code, 0},
		{"bad config value: INVALID_CONFIG", newCreateTopic("badvalue", 1, -1, "segment.bytes", "lots"), kerr.InvalidConfig.Code, 0},
		{"config value out of range: INVALID_CONFIG", newCreateTopic("badrange", 1, -1, "segment.bytes", "1"), kerr.InvalidConfig.Code, 0},
		{"-1 partitions takes num.partitions (KIP-464)", newCreateTopic("defaults", -1, -1), 0, 3},
		{"explicit count and RF 1", newCreateTopic("explicit", 2, 1), 0, 2},
		{"0 partitions: INVALID_PARTITIONS", newCreateTopic("zero", 0, -1), kerr.InvalidPartitions.Code, 0},
		{"-2 partitions: INVALID_PARTITIONS", newCreateTopic("minus2", -2, -1), kerr.InvalidPartitions.Code, 0},
		{"RF 0: INVALID_REPLICATION_FACTOR", newCreateTopic("rf0", 1, 0), kerr.InvalidReplicationFactor.Code, 0},
		{"RF -2: INVALID_REPLICATION_FACTOR", newCreateTopic("rfminus2", 1, -2), kerr.InvalidReplicationFactor.Code, 0},
		{"counts beside an assignment: INVALID_REQUEST", withAssignment(newCreateTopic("both", 1, -1), 1), kerr.InvalidRequest.Code, 0},
		{"more than 2^20 partitions: INVALID_PARTITIONS", newCreateTopic("huge", 1<<21, -1), kerr.InvalidPartitions.Code, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := createTopics(t, cl, false, tc.topic)
			st := resp.Topics[0]
			if st.Topic != tc.topic.Topic || st.ErrorCode != tc.wantCode {
				t.Fatalf("topic %q: error %d (%v), want %d", st.Topic, st.ErrorCode, kerr.ErrorForCode(st.ErrorCode), tc.wantCode)
			}
			mt := metadataTopic(t, cl, tc.topic.Topic, false)
			if tc.wantCode != 0 {
				if mt.ErrorCode == 0 && tc.topic.Topic != "existing" {
					t.Errorf("refused topic %q exists in metadata", tc.topic.Topic)
				}
				return
			}
			if st.NumPartitions != tc.wantN || st.ReplicationFactor != 1 || st.TopicID == ([16]byte{}) {
				t.Errorf("answer: %d partitions, RF %d, id %x; want %d, 1, an id", st.NumPartitions, st.ReplicationFactor, st.TopicID, tc.wantN)
			}
			if mt.ErrorCode != 0 || len(mt.Partitions) != int(tc.wantN) || mt.TopicID != st.TopicID {
				t.Errorf("metadata: error %d, %d partitions, id %x; want 0, %d, %x", mt.ErrorCode, len(mt.Partitions), mt.TopicID, tc.wantN, st.TopicID)
			}
		})
	}

	t.Run("colliding name ('.' and '_' alike): INVALID_TOPIC_EXCEPTION", func(t *testing.T) {
		c.createTopic(t, "a.b", 1, nil)
		st := createTopics(t, cl, false, newCreateTopic("a_b", 1, -1)).Topics[0]
		if st.ErrorCode != kerr.InvalidTopicException.Code {
			t.Errorf("a_b beside a.b: error %d, want %d", st.ErrorCode, kerr.InvalidTopicException.Code)
		}
	})

	t.Run("ValidateOnly creates nothing", func(t *testing.T) {
		st := createTopics(t, cl, true, newCreateTopic("validated", 2, -1, "segment.bytes", "1048576")).Topics[0]
		if st.ErrorCode != 0 || st.NumPartitions != 2 {
			t.Fatalf("validate: error %d, %d partitions; want 0, 2", st.ErrorCode, st.NumPartitions)
		}
		if mt := metadataTopic(t, cl, "validated", false); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("after ValidateOnly, metadata error %d, want UNKNOWN_TOPIC_OR_PARTITION", mt.ErrorCode)
		}
		// ValidateOnly still reports what a real create would refuse.
		if st := createTopics(t, cl, true, newCreateTopic("existing", 1, -1)).Topics[0]; st.ErrorCode != kerr.TopicAlreadyExists.Code {
			t.Errorf("validate existing: error %d, want TOPIC_ALREADY_EXISTS", st.ErrorCode)
		}
	})

	t.Run("the same topic twice in one request: INVALID_REQUEST", func(t *testing.T) {
		resp := createTopics(t, cl, false, newCreateTopic("twice", 1, -1), newCreateTopic("twice", 1, -1))
		for _, st := range resp.Topics {
			if st.ErrorCode != kerr.InvalidRequest.Code {
				t.Errorf("error %d, want INVALID_REQUEST", st.ErrorCode)
			}
		}
	})
}

// TestCreateTopicsPastTheLimit: a topic that would take the cluster past its partition
// limit (KIP-578's max.partitions) is refused with POLICY_VIOLATION and a message
// naming the setting, and one that fits is created.
func TestCreateTopicsPastTheLimit(t *testing.T) {
	c := startCluster(t, withMaxClusterPartitions(6)) // __consumer_offsets and __transaction_state hold 1 each
	cl := dial(t, c.proxyAddr)
	st := createTopics(t, cl, false, newCreateTopic("too-wide", 5, -1)).Topics[0]
	if st.ErrorCode != kerr.PolicyViolation.Code || st.ErrorMessage == nil || !strings.Contains(*st.ErrorMessage, "--max-cluster-partitions") {
		t.Fatalf("5 partitions past a limit of 6 with 2 held: error %d (%v), want POLICY_VIOLATION naming --max-cluster-partitions", st.ErrorCode, st.ErrorMessage)
	}
	if st := createTopics(t, cl, false, newCreateTopic("fits", 4, -1)).Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("4 partitions within the limit: error %d", st.ErrorCode)
	}
}

func TestDeleteTopics(t *testing.T) {
	c := startCluster(t)
	cl := dial(t, c.proxyAddr)
	c.createTopic(t, "by-name", 1, nil)
	id := c.createTopic(t, "by-id", 1, nil)

	deleteByName := func(version int16, name string) kmsg.DeleteTopicsResponseTopic {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version, req.TopicNames = version, []string{name}
		if version >= 6 {
			req.TopicNames = nil
			req.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr(name)}}
		}
		return do[*kmsg.DeleteTopicsResponse](t, cl, req).Topics[0]
	}

	t.Run("by name (v5)", func(t *testing.T) {
		if st := deleteByName(5, "by-name"); st.ErrorCode != 0 {
			t.Fatalf("error %d", st.ErrorCode)
		}
		if mt := metadataTopic(t, cl, "by-name", false); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("deleted topic: metadata error %d, want UNKNOWN_TOPIC_OR_PARTITION", mt.ErrorCode)
		}
	})
	t.Run("by id (v6, KIP-516)", func(t *testing.T) {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = 6
		req.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: id}}
		st := do[*kmsg.DeleteTopicsResponse](t, cl, req).Topics[0]
		if st.ErrorCode != 0 || st.Topic == nil || *st.Topic != "by-id" || st.TopicID != id {
			t.Fatalf("error %d, topic %v, id %x; want 0, by-id, %x", st.ErrorCode, st.Topic, st.TopicID, id)
		}
		if mt := metadataTopic(t, cl, "by-id", false); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("deleted topic: metadata error %d, want UNKNOWN_TOPIC_OR_PARTITION", mt.ErrorCode)
		}
	})
	t.Run("unknown name: UNKNOWN_TOPIC_OR_PARTITION", func(t *testing.T) {
		for _, v := range []int16{0, 5, 6} {
			if st := deleteByName(v, "never-was"); st.ErrorCode != kerr.UnknownTopicOrPartition.Code {
				t.Errorf("v%d: error %d, want %d", v, st.ErrorCode, kerr.UnknownTopicOrPartition.Code)
			}
		}
	})
	t.Run("unknown id: UNKNOWN_TOPIC_ID (Kafka's DeleteTopics v6)", func(t *testing.T) {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = 6
		req.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: [16]byte{1, 2, 3}}}
		st := do[*kmsg.DeleteTopicsResponse](t, cl, req).Topics[0]
		if st.ErrorCode != kerr.UnknownTopicID.Code {
			t.Fatalf("DeleteTopics v6 by unknown topic id answers %d, Kafka answers UNKNOWN_TOPIC_ID (100)", st.ErrorCode)
		}
	})
	t.Run("internal topic: refused", func(t *testing.T) {
		if st := deleteByName(5, "__consumer_offsets"); st.ErrorCode == 0 {
			t.Errorf("deleting __consumer_offsets succeeded")
		}
	})
}

func TestCreatePartitions(t *testing.T) {
	c := startCluster(t)
	cl := dial(t, c.proxyAddr)
	c.createTopic(t, "grow", 1, nil)

	for _, tc := range []struct {
		name     string
		topic    string
		count    int32
		validate bool
		wantCode int16
		wantN    int // partitions in metadata afterwards
	}{
		{"ValidateOnly grows nothing", "grow", 5, true, 0, 1},
		{"grow 1 to 3", "grow", 3, false, 0, 3},
		{"shrink 3 to 2: INVALID_PARTITIONS", "grow", 2, false, kerr.InvalidPartitions.Code, 3},
		{"same count: INVALID_PARTITIONS", "grow", 3, false, kerr.InvalidPartitions.Code, 3},
		{"unknown topic: UNKNOWN_TOPIC_OR_PARTITION", "nope", 3, false, kerr.UnknownTopicOrPartition.Code, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.Version, req.TimeoutMillis, req.ValidateOnly = 3, 5000, tc.validate
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = tc.topic, tc.count
			req.Topics = append(req.Topics, rt)
			st := do[*kmsg.CreatePartitionsResponse](t, cl, req).Topics[0]
			if st.ErrorCode != tc.wantCode {
				t.Fatalf("error %d, want %d", st.ErrorCode, tc.wantCode)
			}
			if tc.wantN > 0 {
				if mt := metadataTopic(t, cl, tc.topic, false); len(mt.Partitions) != tc.wantN {
					t.Errorf("metadata lists %d partitions, want %d", len(mt.Partitions), tc.wantN)
				}
			}
		})
	}
}

func TestDescribeConfigs(t *testing.T) {
	c := startCluster(t)
	cl := dial(t, c.proxyAddr)
	c.createTopic(t, "configured", 1, map[string]*string{"segment.bytes": kmsg.StringPtr("1048576")})

	describe := func(version int16, names []string, resources ...string) *kmsg.DescribeConfigsResponse {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version, req.IncludeDocumentation = version, true
		for _, name := range resources {
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, name, names
			req.Resources = append(req.Resources, rr)
		}
		return do[*kmsg.DescribeConfigsResponse](t, cl, req)
	}

	t.Run("override is DYNAMIC_TOPIC_CONFIG, the rest DEFAULT_CONFIG (KIP-226)", func(t *testing.T) {
		for _, v := range []int16{0, 1, 3, 4} {
			r := describe(v, nil, "configured").Resources[0]
			if r.ErrorCode != 0 || len(r.Configs) == 0 {
				t.Fatalf("v%d: error %d, %d configs", v, r.ErrorCode, len(r.Configs))
			}
			for _, e := range r.Configs {
				wantSource, wantDefault := kmsg.ConfigSourceDefaultConfig, true
				if e.Name == "segment.bytes" {
					wantSource, wantDefault = kmsg.ConfigSourceDynamicTopicConfig, false
					if e.Value == nil || *e.Value != "1048576" {
						t.Errorf("v%d: segment.bytes = %v, want 1048576", v, e.Value)
					}
				}
				if v == 0 && e.IsDefault != wantDefault { // v0 has IsDefault, v1+ Source
					t.Errorf("v0: %s IsDefault %v, want %v", e.Name, e.IsDefault, wantDefault)
				}
				if v >= 1 && e.Source != wantSource {
					t.Errorf("v%d: %s source %v, want %v", v, e.Name, e.Source, wantSource)
				}
				if v >= 3 && (e.Documentation == nil || *e.Documentation == "") {
					t.Errorf("v%d: %s has no documentation though it was asked for", v, e.Name)
				}
			}
		}
	})
	t.Run("named configs only", func(t *testing.T) {
		r := describe(4, []string{"max.message.bytes"}, "configured").Resources[0]
		if len(r.Configs) != 1 || r.Configs[0].Name != "max.message.bytes" {
			t.Errorf("asked for max.message.bytes, got %+v", r.Configs)
		}
	})
	t.Run("broker: Kafka's broker settings, read-only", func(t *testing.T) {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version, req.IncludeSynonyms = 4, true
		for _, name := range []string{"0", "", "99", "x"} {
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, name
			req.Resources = append(req.Resources, rr)
		}
		resp := do[*kmsg.DescribeConfigsResponse](t, cl, req)
		own := resp.Resources[0]
		if own.ErrorCode != 0 {
			t.Fatalf("broker 0: error %d", own.ErrorCode)
		}
		got := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, e := range own.Configs {
			got[e.Name] = e
			if !e.ReadOnly {
				t.Errorf("%s is not read-only; Strait cannot change broker settings at run time", e.Name)
			}
		}
		for name, want := range map[string]string{
			"broker.id": "0", "num.partitions": "1", "default.replication.factor": "1",
			"auto.create.topics.enable": "false", "log.retention.ms": "604800000",
			"log.segment.bytes": "1073741824", "message.max.bytes": "1048588", "min.insync.replicas": "1",
			"log.cleanup.policy": "delete", "advertised.listeners": "PLAINTEXT://" + c.proxyAddr,
		} {
			e, ok := got[name]
			if !ok || e.Value == nil || *e.Value != want {
				t.Errorf("%s = %v; want %q", name, e.Value, want)
				continue
			}
			if len(e.ConfigSynonyms) == 0 || e.ConfigSynonyms[0].Name != name {
				t.Errorf("%s: synonyms %+v; want itself first", name, e.ConfigSynonyms)
			}
		}
		if e := got["log.retention.ms"]; e.Source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("log.retention.ms source %v; want DEFAULT_CONFIG", e.Source)
		}
		if e := got["auto.create.topics.enable"]; e.Source != kmsg.ConfigSourceStaticBrokerConfig {
			t.Errorf("auto.create.topics.enable (off, Kafka's default on) source %v; want STATIC_BROKER_CONFIG", e.Source)
		}
		if r := resp.Resources[1]; r.ErrorCode != 0 || len(r.Configs) != 0 {
			t.Errorf("cluster defaults (empty name): error %d, %d configs; want none", r.ErrorCode, len(r.Configs))
		}
		for _, r := range resp.Resources[2:] {
			if r.ErrorCode != kerr.InvalidRequest.Code {
				t.Errorf("broker %q: error %d; want INVALID_REQUEST", r.ResourceName, r.ErrorCode)
			}
		}
	})
	t.Run("topic synonyms: the override, then the broker default", func(t *testing.T) {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version, req.IncludeSynonyms = 4, true
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, "configured", []string{"segment.bytes"}
		req.Resources = append(req.Resources, rr)
		e := do[*kmsg.DescribeConfigsResponse](t, cl, req).Resources[0].Configs[0]
		var names []string
		for _, s := range e.ConfigSynonyms {
			names = append(names, s.Name)
		}
		if !slices.Equal(names, []string{"segment.bytes", "log.segment.bytes"}) || e.ReadOnly {
			t.Errorf("segment.bytes: synonyms %v, read-only %v; want [segment.bytes log.segment.bytes], writable", names, e.ReadOnly)
		}
	})
	t.Run("unknown topic: UNKNOWN_TOPIC_OR_PARTITION", func(t *testing.T) {
		resp := describe(4, nil, "configured", "missing")
		if len(resp.Resources) != 2 {
			t.Fatalf("%d resources answered, want 2", len(resp.Resources))
		}
		if r := resp.Resources[1]; r.ResourceName != "missing" || r.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("%s: error %d, want %d", r.ResourceName, r.ErrorCode, kerr.UnknownTopicOrPartition.Code)
		}
		if r := resp.Resources[0]; r.ErrorCode != 0 {
			t.Errorf("a known topic beside an unknown one: error %d", r.ErrorCode)
		}
	})
}

func TestDescribeCluster(t *testing.T) {
	c := startCluster(t)
	cl := dial(t, c.proxyAddr)
	for _, v := range []int16{0, 1, 2} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version = v
		resp := do[*kmsg.DescribeClusterResponse](t, cl, req)
		if resp.ErrorCode != 0 || resp.ClusterID != c.cache.Snapshot().ClusterID || resp.ControllerID != 0 {
			t.Errorf("v%d: error %d, cluster %q, controller %d", v, resp.ErrorCode, resp.ClusterID, resp.ControllerID)
		}
		want := []kmsg.DescribeClusterResponseBroker{{NodeID: 0, Host: "127.0.0.1", Port: portOf(t, c.proxyAddr)}}
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != want[0].NodeID || resp.Brokers[0].Host != want[0].Host || resp.Brokers[0].Port != want[0].Port {
			t.Errorf("v%d: brokers %+v, want the proxy %+v", v, resp.Brokers, want)
		}
	}
	// KIP-1102 (v1+): controller endpoints (type 2) are not offered to clients.
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version, req.EndpointType = 2, 2
	if resp := do[*kmsg.DescribeClusterResponse](t, cl, req); resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
		t.Errorf("EndpointType 2: error %d, want UNSUPPORTED_ENDPOINT_TYPE", resp.ErrorCode)
	}
}

func TestMetadata(t *testing.T) {
	t.Run("auto.create.topics.enable on", func(t *testing.T) {
		c := startCluster(t, withAutoCreate(true), withDefaultPartitions(2))
		cl := dial(t, c.proxyAddr)
		if mt := metadataTopic(t, cl, "auto-no", false); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("AllowAutoTopicCreation=false: error %d, want UNKNOWN_TOPIC_OR_PARTITION", mt.ErrorCode)
		}
		mt := metadataTopic(t, cl, "auto-yes", true)
		if mt.ErrorCode != 0 || len(mt.Partitions) != 2 {
			t.Errorf("AllowAutoTopicCreation=true: error %d, %d partitions; want created with 2", mt.ErrorCode, len(mt.Partitions))
		}
		if mt := metadataTopic(t, cl, "bad name", true); mt.ErrorCode != kerr.InvalidTopicException.Code {
			t.Errorf("invalid name with auto-create: error %d, want INVALID_TOPIC_EXCEPTION", mt.ErrorCode)
		}
		// Before v4 there is no AllowAutoTopicCreation: the broker setting decides.
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 3
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("auto-v3")}}
		if mt := do[*kmsg.MetadataResponse](t, cl, req).Topics[0]; mt.ErrorCode != 0 {
			t.Errorf("v3 with auto-create on: error %d, want the topic created", mt.ErrorCode)
		}
	})
	t.Run("auto.create.topics.enable off", func(t *testing.T) {
		c := startCluster(t)
		cl := dial(t, c.proxyAddr)
		if mt := metadataTopic(t, cl, "auto-off", true); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("error %d, want UNKNOWN_TOPIC_OR_PARTITION", mt.ErrorCode)
		}
	})

	c := startCluster(t)
	cl := dial(t, c.proxyAddr)
	idA := c.createTopic(t, "meta-a", 2, nil)
	c.createTopic(t, "meta-b", 1, nil)

	t.Run("by id (v12, KIP-516)", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			id       [16]byte
			wantCode int16
		}{
			{"known id", idA, 0},
			{"unknown id: UNKNOWN_TOPIC_ID", [16]byte{9, 9, 9}, kerr.UnknownTopicID.Code},
		} {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 12
			req.Topics = []kmsg.MetadataRequestTopic{{TopicID: tc.id}}
			mt := do[*kmsg.MetadataResponse](t, cl, req).Topics[0]
			if mt.ErrorCode != tc.wantCode {
				t.Errorf("%s: error %d, want %d", tc.name, mt.ErrorCode, tc.wantCode)
			}
			if tc.wantCode == 0 && (mt.Topic == nil || *mt.Topic != "meta-a" || len(mt.Partitions) != 2) {
				t.Errorf("%s: topic %v with %d partitions, want meta-a with 2", tc.name, mt.Topic, len(mt.Partitions))
			}
		}
	})
	t.Run("empty topic list (v1+) asks for no topics", func(t *testing.T) {
		req := kmsg.NewPtrMetadataRequest()
		req.Version, req.Topics = 12, []kmsg.MetadataRequestTopic{}
		if resp := do[*kmsg.MetadataResponse](t, cl, req); len(resp.Topics) != 0 {
			t.Errorf("%d topics listed, want none", len(resp.Topics))
		}
	})
	t.Run("invalid name: INVALID_TOPIC_EXCEPTION", func(t *testing.T) {
		if mt := metadataTopic(t, cl, "no/slashes", false); mt.ErrorCode != kerr.InvalidTopicException.Code {
			t.Errorf("error %d, want %d", mt.ErrorCode, kerr.InvalidTopicException.Code)
		}
	})
	// Every version decodes, lists all topics for a null (v0: empty) topic list, marks
	// __consumer_offsets and __transaction_state internal (v1+), and
	// names the proxy as the only broker and every partition's leader.
	for v := int16(0); v <= 13; v++ {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		resp := do[*kmsg.MetadataResponse](t, cl, req)
		var names []string
		for _, mt := range resp.Topics {
			if mt.Topic != nil && (*mt.Topic == "__consumer_offsets" || *mt.Topic == "__transaction_state") {
				if v >= 1 && !mt.IsInternal {
					t.Errorf("v%d: %s not marked internal", v, *mt.Topic)
				}
				continue
			}
			if mt.Topic != nil {
				names = append(names, *mt.Topic)
			}
			if v >= 10 && mt.TopicID == ([16]byte{}) {
				t.Errorf("v%d: topic %v without id", v, mt.Topic)
			}
			for _, mp := range mt.Partitions {
				if mp.Leader != 0 || mp.ErrorCode != 0 {
					t.Errorf("v%d: %v-%d leader %d error %d, want the proxy (0)", v, mt.Topic, mp.Partition, mp.Leader, mp.ErrorCode)
				}
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"meta-a", "meta-b"}) {
			t.Errorf("v%d: all-topics listing %v, want [meta-a meta-b]", v, names)
		}
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 0 || resp.Brokers[0].Port != portOf(t, c.proxyAddr) {
			t.Errorf("v%d: brokers %+v, want only the proxy", v, resp.Brokers)
		}
	}
}
