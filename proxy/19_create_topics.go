package proxy

// CreateTopics, versions 0 to 7.
//
// Creation is synchronous: when the answer is sent the topic is in the metadata, so
// TimeoutMillis only bounds the wait. NumPartitions and ReplicationFactor of -1 take the
// cluster defaults (KIP-464). v5+ answers carry the topic's partition count,
// replication factor and configs; v7 carries its id.
//
// Differences from Kafka: only the topic configs Strait honours are accepted
// (routing.TopicConfigs); any other gets INVALID_CONFIG rather than being stored
// and ignored.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/routing"
)

func (p *Proxy) createTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int)
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	created := false
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
		spec := createTopicSpec(rt)
		var t routing.Topic
		var err error
		if req.ValidateOnly {
			t, err = p.controller.PlanTopic(ctx, spec)
		} else {
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

func createTopicSpec(rt kmsg.CreateTopicsRequestTopic) routing.TopicSpec {
	spec := routing.TopicSpec{Name: rt.Topic, Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor}
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
	return spec
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
