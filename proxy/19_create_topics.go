package proxy

// CreateTopics, versions 0 to 7.
//
// Creation is synchronous: when the answer is sent the topic is in the metadata, so
// TimeoutMillis only bounds the wait. NumPartitions and ReplicationFactor of -1 take the
// cluster defaults (KIP-464); 0 and values below -1 are INVALID_PARTITIONS and
// INVALID_REPLICATION_FACTOR, and counts beside an explicit assignment INVALID_REQUEST,
// as in Kafka. A topic that would take a node or the cluster past its partition limit
// (KIP-578's max.broker.partitions and max.partitions) is POLICY_VIOLATION. v5+ answers carry the topic's partition count,
// replication factor and configs; v7 carries its id.
//
// Authorization: CREATE on the cluster, or else on each topic
// (TOPIC_AUTHORIZATION_FAILED).
//
// Differences from Kafka: only the topic configs Strait honours are accepted
// (routing.TopicConfigs); any other gets INVALID_CONFIG rather than being stored
// and ignored.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) createTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int)
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	created := false
	clusterWide := p.allowedQuietly(ctx, acl.Create, acl.Cluster, acl.ClusterName)
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if seen[rt.Topic] > 1 {
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = kmsg.StringPtr("topic " + rt.Topic + " appears more than once in the request")
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !clusterWide && !p.allowed(ctx, acl.Create, acl.Topic, rt.Topic) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		spec, err := createTopicSpec(rt)
		var t routing.Topic
		switch {
		case err != nil:
		case req.ValidateOnly:
			t, err = p.controller.PlanTopic(ctx, spec)
		default:
			t, err = p.controller.CreateTopic(ctx, spec)
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = adminErrorCode(err), errorMessage(err)
		} else {
			created = created || !req.ValidateOnly
			fillCreatedTopic(&st, &t)
		}
		resp.Topics = append(resp.Topics, st)
	}
	p.refreshAfter(ctx, created, "creating topics")
	return resp, nil
}

// createTopicSpec checks a requested topic's counts as Kafka does (-1 takes the
// default, KIP-464; 0 and anything below -1 are refused; counts and an explicit
// assignment exclude each other) and turns it into a spec.
func createTopicSpec(rt kmsg.CreateTopicsRequestTopic) (routing.TopicSpec, error) {
	switch {
	case len(rt.ReplicaAssignment) > 0 && (rt.NumPartitions != -1 || rt.ReplicationFactor != -1):
		return routing.TopicSpec{}, fmt.Errorf("%w: numPartitions or replicationFactor and replicasAssignment were both set; set the counts to -1 with an assignment", errInvalidRequest)
	case len(rt.ReplicaAssignment) == 0 && (rt.NumPartitions == 0 || rt.NumPartitions < -1):
		return routing.TopicSpec{}, fmt.Errorf("%w: %d; want at least 1, or -1 for the default", routing.ErrInvalidPartitions, rt.NumPartitions)
	case len(rt.ReplicaAssignment) == 0 && (rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1):
		return routing.TopicSpec{}, fmt.Errorf("%w: %d; want at least 1, or -1 for the default", routing.ErrInvalidReplicationFactor, rt.ReplicationFactor)
	}
	spec := routing.TopicSpec{Name: rt.Topic, Partitions: max(rt.NumPartitions, 0), ReplicationFactor: max(rt.ReplicationFactor, 0)}
	if len(rt.Configs) > 0 {
		spec.Configs = make(map[string]string, len(rt.Configs))
		for _, c := range rt.Configs {
			if c.Value != nil {
				spec.Configs[c.Name] = *c.Value
			}
		}
	}
	if len(rt.ReplicaAssignment) > 0 {
		spec.Assignment = make([][]int32, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(spec.Assignment) {
				spec.Assignment = [][]int32{} // checkAssignment reports it
				break
			}
			spec.Assignment[a.Partition] = a.Replicas
		}
	}
	return spec, nil
}

func fillCreatedTopic(st *kmsg.CreateTopicsResponseTopic, t *routing.Topic) {
	st.TopicID = t.ID
	st.NumPartitions = int32(len(t.Partitions))
	st.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
	for _, c := range routing.TopicConfigs() {
		value, override := t.ConfigValue(c.Name)
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		rc.Name, rc.Value = c.Name, &value
		rc.Source = int8(kmsg.ConfigSourceDefaultConfig)
		if override {
			rc.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
		}
		st.Configs = append(st.Configs, rc)
	}
}
