package routing

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"
)

// TopicID is a topic's UUID (KIP-516). It outlives renames and tells a recreated topic
// from the one it replaced.
type TopicID [16]byte

// NewTopicID returns a random version-4 UUID.
func NewTopicID() TopicID {
	var id TopicID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails on supported platforms.
	id[6] = (id[6] & 0x0f) | 0x40
	id[8] = (id[8] & 0x3f) | 0x80
	return id
}

// String formats the id as lower-case hex.
func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// Topic is one topic: its identity, configuration overrides and partitions.
type Topic struct {
	Name    string            `json:"name"`
	ID      TopicID           `json:"id"`
	Configs map[string]string `json:"configs,omitempty"` // overrides only; see TopicConfigs for defaults
	// ConfigVersion grows with every change of Configs, for compare-and-set updates
	// and so nodes can tell when to re-apply them.
	ConfigVersion int64       `json:"config_version,omitempty"`
	Partitions    []Partition `json:"partitions"` // indexed by partition number
}

// Partition is the placement and leadership of one partition.
type Partition struct {
	Index          int32   `json:"index"`
	Replicas       []int32 `json:"replicas"` // node ids; the first is the preferred leader
	ISR            []int32 `json:"isr"`
	Leader         int32   `json:"leader"` // -1 when no replica can lead
	LeaderEpoch    int32   `json:"leader_epoch"`
	PartitionEpoch int32   `json:"partition_epoch"` // bumped by every change, for compare-and-set
}

// HasReplica reports whether node holds a replica of the partition.
func (p Partition) HasReplica(node int32) bool { return slices.Contains(p.Replicas, node) }

// Node is a registered partition-log node.
type Node struct {
	ID   int32  `json:"id"`
	Addr string `json:"addr"` // host:port that proxies and peers dial
	Rack string `json:"rack,omitempty"`
	// MaxPartitions is how many partition replicas the node can hold (KIP-578's
	// max.broker.partitions), from its descriptor limit or its --max-node-partitions;
	// 0 means no limit. The controller places no more on it.
	MaxPartitions int `json:"max_partitions,omitempty"`
	// Listeners are the addresses advertised to clients, by listener name ("SASL_SSL"),
	// for redirect mode; none means Addr serves them all.
	Listeners map[string]string `json:"listeners,omitempty"`
}

// Proxy is a registered front-tier process: clients may be sent to it.
type Proxy struct {
	ID   int32  `json:"id"`
	Addr string `json:"addr"` // host:port other Strait processes dial, and clients without Listeners
	Rack string `json:"rack,omitempty"`
	// Listeners are the addresses advertised to clients, by listener name; Metadata
	// names each broker by the address of the listener the client connected on, as
	// Kafka does.
	Listeners map[string]string `json:"listeners,omitempty"`
}

// AdvertisedAddr is where a client that connected on listener should reach the proxy:
// that listener's address, or ok false if the proxy has listeners but not that one.
func (p Proxy) AdvertisedAddr(listener string) (string, bool) {
	return advertisedAddr(p.Addr, p.Listeners, listener)
}

// AdvertisedAddr is AdvertisedAddr of a node, for redirect mode.
func (n Node) AdvertisedAddr(listener string) (string, bool) {
	return advertisedAddr(n.Addr, n.Listeners, listener)
}

// Equal reports whether two registrations say the same.
func (n Node) Equal(o Node) bool {
	return n.ID == o.ID && n.Addr == o.Addr && n.Rack == o.Rack && n.MaxPartitions == o.MaxPartitions && maps.Equal(n.Listeners, o.Listeners)
}

// Equal reports whether two registrations say the same.
func (p Proxy) Equal(o Proxy) bool {
	return p.ID == o.ID && p.Addr == o.Addr && p.Rack == o.Rack && maps.Equal(p.Listeners, o.Listeners)
}

func advertisedAddr(addr string, listeners map[string]string, listener string) (string, bool) {
	if len(listeners) == 0 || listener == "" {
		return addr, true
	}
	a, ok := listeners[listener]
	return a, ok
}

// Lease gives one holder a role for a while: coordinating a __consumer_offsets
// partition, say. Token grows with every change of holder, so a former holder's
// writes can be fenced.
type Lease struct {
	Holder    string    `json:"holder"`
	Token     int64     `json:"token"`
	ExpiresAt time.Time `json:"expires_at"` // as of the last change of holder; renewals extend it in the Store only
}

// Snapshot is an immutable view of the cluster metadata at one version.
// Never modify a Snapshot or anything reachable from it.
type Snapshot struct {
	Version   int64
	ClusterID string
	// Incarnation changes when the Store lost its data (a Redis restarted without
	// persistence): processes then register again and nodes republish their topics.
	Incarnation string
	Topics      map[string]*Topic
	Nodes       map[int32]Node
	Proxies     map[int32]Proxy
	Leases      map[string]Lease
	// ACLs are the cluster's ACL bindings, in a stable order.
	ACLs []ACL

	topicsByID map[TopicID]*Topic
}

// newSnapshot indexes topics and nodes; the caller hands over ownership of them.
func newSnapshot(version int64, clusterID string, topics []*Topic, nodes []Node) *Snapshot {
	s := &Snapshot{
		Version:    version,
		ClusterID:  clusterID,
		Topics:     make(map[string]*Topic, len(topics)),
		Nodes:      make(map[int32]Node, len(nodes)),
		topicsByID: make(map[TopicID]*Topic, len(topics)),
	}
	for _, t := range topics {
		s.Topics[t.Name] = t
		s.topicsByID[t.ID] = t
	}
	for _, n := range nodes {
		s.Nodes[n.ID] = n
	}
	return s
}

// Topic returns the named topic.
func (s *Snapshot) Topic(name string) (*Topic, bool) {
	t, ok := s.Topics[name]
	return t, ok
}

// TopicByID returns the topic with the given id.
func (s *Snapshot) TopicByID(id TopicID) (*Topic, bool) {
	t, ok := s.topicsByID[id]
	return t, ok
}

// Partition returns one partition of the named topic.
func (s *Snapshot) Partition(topic string, index int32) (Partition, bool) {
	t, ok := s.Topics[topic]
	if !ok || index < 0 || int(index) >= len(t.Partitions) {
		return Partition{}, false
	}
	return t.Partitions[index], true
}

// TopicNames returns every topic name, sorted.
func (s *Snapshot) TopicNames() []string {
	names := make([]string, 0, len(s.Topics))
	for name := range s.Topics {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// NodeIDs returns every registered node id, sorted.
func (s *Snapshot) NodeIDs() []int32 {
	ids := make([]int32, 0, len(s.Nodes))
	for id := range s.Nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// clone deep-copies a topic so a store can change it without touching published snapshots.
func (t *Topic) clone() *Topic {
	c := *t
	c.Configs = make(map[string]string, len(t.Configs))
	for k, v := range t.Configs {
		c.Configs[k] = v
	}
	c.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		c.Partitions[i] = p.clone()
	}
	return &c
}

func (p Partition) clone() Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.ISR = slices.Clone(p.ISR)
	return p
}

// MarshalText writes the id as hex, so stored metadata stays readable.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads an id written by MarshalText.
func (id *TopicID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(id) {
		return fmt.Errorf("routing: topic id %q: want %d hex digits", b, 2*len(id))
	}
	_, err := hex.Decode(id[:], b)
	return err
}
