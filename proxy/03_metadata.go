package proxy

// Metadata, versions 0 to 13.
//
// What the brokers and leaders are depends on the proxy's mode (modes.go): in forward
// mode the live proxies, each leading a share of the partitions by rendezvous hashing
// (any proxy still serves any partition: a client with stale metadata is forwarded, not
// refused); as a sidecar this proxy alone; in redirect mode the nodes lead and the live
// proxies are listed too, since one of them coordinates each group.
//
// Replicas and ISR name only brokers the same answer lists: librdkafka, sarama and
// Kafka's admin tools look each id up among the brokers and log, skip or fail on one
// they cannot find. In redirect mode the nodes are listed, so they are the real node
// ids. In forward and sidecar modes the brokers are proxies, so each replica node is
// named by a listed proxy (leaders.replicas in modes.go): the real leader by the
// advertised leader, the followers by the proxies after it in id order. The trade-off:
// the replica count shown is the real one only while there are at least as many
// proxies as replicas (a sidecar always shows one replica), and the ids are not the
// nodes' (`strait topic` and the nodes' own Metadata give those); what stays true is
// that the leader is a replica, the ISR is a subset of the replicas, and an ISR that
// shrinks shows as shorter, so under-replication is still visible.
// Topics may be named by id from v10 (KIP-516). Unknown topics are created when both
// the client allows it (v4+, always before) and auto.create.topics.enable is on, and
// the principal may CREATE them (on the cluster or the topic).
//
// Authorization, as in Kafka: a topic the principal may not DESCRIBE is left out of a
// listing of all topics, and answered TOPIC_AUTHORIZATION_FAILED, with nothing about
// it, when asked for by name. Brokers are named by their addresses on the listener
// the client connected on.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) metadata(ctx context.Context, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	snap := p.view.Snapshot()
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if !all && p.cfg.AutoCreateTopics && (req.AllowAutoTopicCreation || req.Version < 4) {
		snap = p.autoCreate(ctx, snap, p.creatable(ctx, metadataTopicNames(req)))
	}
	for _, b := range p.brokers(snap, listenerOf(ctx)) {
		resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: b.id, Host: b.host, Port: b.port, Rack: b.rack})
	}
	resp.ClusterID = &snap.ClusterID
	resp.ControllerID = p.cfg.BrokerID
	leaders := p.leaders(snap)
	if all {
		for _, name := range snap.TopicNames() {
			if p.allowedQuietly(ctx, acl.Describe, acl.Topic, name) {
				resp.Topics = append(resp.Topics, describeTopic(snap.Topics[name], leaders))
			}
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		mt := requestedTopic(snap, rt, leaders)
		if mt.Topic != nil && !p.allowed(ctx, acl.Describe, acl.Topic, *mt.Topic) {
			mt = kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID, mt.ErrorCode = rt.Topic, rt.TopicID, kerr.TopicAuthorizationFailed.Code
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp, nil
}

// creatable keeps the names of topics the principal may create: CREATE on the cluster
// allows them all, else CREATE on each topic.
func (p *Proxy) creatable(ctx context.Context, names []string) []string {
	if p.allowedQuietly(ctx, acl.Create, acl.Cluster, acl.ClusterName) {
		return names
	}
	var out []string
	for _, name := range names {
		if p.allowedQuietly(ctx, acl.Create, acl.Topic, name) {
			out = append(out, name)
		}
	}
	return out
}

// requestedTopic describes one topic the client asked for by name or id.
func requestedTopic(snap *routing.Snapshot, rt kmsg.MetadataRequestTopic, leaders leaders) kmsg.MetadataResponseTopic {
	var t *routing.Topic
	var ok bool
	if rt.Topic != nil {
		t, ok = snap.Topic(*rt.Topic)
	} else {
		t, ok = snap.TopicByID(rt.TopicID)
	}
	if ok {
		return describeTopic(t, leaders)
	}
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
	switch {
	case rt.Topic == nil:
		mt.ErrorCode = kerr.UnknownTopicID.Code
	case routing.ValidateTopicName(*rt.Topic) != nil:
		mt.ErrorCode = kerr.InvalidTopicException.Code
	default:
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
	}
	return mt
}

func describeTopic(t *routing.Topic, leaders leaders) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic, mt.TopicID = &name, t.ID
	mt.IsInternal = routing.IsInternalTopic(t.Name)
	for _, part := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = part.Index
		mp.Leader = leaders.of(t.ID, part)
		mp.LeaderEpoch = part.LeaderEpoch
		mp.Replicas, mp.ISR = leaders.replicas(part, mp.Leader)
		if mp.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// autoCreate creates the valid, unknown topics among names with the default partition
// count and replication factor, and returns a snapshot that includes them.
func (p *Proxy) autoCreate(ctx context.Context, snap *routing.Snapshot, names []string) *routing.Snapshot {
	created := false
	for _, name := range names {
		if _, ok := snap.Topic(name); ok || routing.ValidateTopicName(name) != nil || routing.IsInternalTopic(name) {
			continue
		}
		_, err := p.controller.CreateTopic(ctx, routing.TopicSpec{Name: name})
		switch {
		case err == nil:
			created = true
		case errors.Is(err, routing.ErrTopicExists): // another request created it first
			created = true
		default:
			p.logger.WarnContext(ctx, "auto-creating topic failed", "topic", name, "err", err)
		}
	}
	if !created {
		return snap
	}
	if err := p.view.Refresh(ctx); err != nil {
		p.logger.WarnContext(ctx, "refreshing metadata after auto-creating topics failed", "err", err)
	}
	return p.view.Snapshot()
}

func metadataTopicNames(req *kmsg.MetadataRequest) []string {
	var names []string
	for _, t := range req.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	return names
}
