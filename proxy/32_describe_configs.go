package proxy

// DescribeConfigs, versions 0 to 4.
//
// Topics (resource type 2) list the configurations Strait honours, with their values
// and whether each is an override (DYNAMIC_TOPIC_CONFIG) or the default
// (DEFAULT_CONFIG); v3+ add type and documentation. Brokers (type 4) answer with no
// configurations: the proxy has none a client can act on yet. Other resource types
// get INVALID_REQUEST. Authorization: DESCRIBE_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED) or the cluster (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) describeConfigs(ctx context.Context, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	snap := p.view.Snapshot()
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if code := p.configsAuthorization(ctx, acl.DescribeConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
			sr.ErrorCode = code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, ok := snap.Topic(rr.ResourceName)
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				sr.ErrorMessage = kmsg.StringPtr("unknown topic " + rr.ResourceName)
				break
			}
			sr.Configs = topicConfigEntries(t, rr.ConfigNames, req.IncludeDocumentation)
		case kmsg.ConfigResourceTypeBroker:
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = kmsg.StringPtr("Strait describes topic and broker configs only")
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// topicConfigEntries lists the topic's honoured configs, all or only the named ones.
func topicConfigEntries(t *routing.Topic, names []string, withDocs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, c := range routing.TopicConfigs() {
		if names != nil && !slices.Contains(names, c.Name) {
			continue
		}
		value, override := t.ConfigValue(c.Name)
		e := kmsg.NewDescribeConfigsResponseResourceConfig()
		e.Name, e.Value, e.IsSensitive = c.Name, &value, c.Sensitive
		e.IsDefault = !override
		e.Source = kmsg.ConfigSourceDefaultConfig
		if override {
			e.Source = kmsg.ConfigSourceDynamicTopicConfig
		}
		e.ConfigType = configType(c.Type)
		if withDocs {
			e.Documentation = kmsg.StringPtr(c.Doc)
		}
		out = append(out, e)
	}
	return out
}

// configsAuthorization is the error code for a principal that may not op the configs
// of a topic or broker, 0 if it may.
func (p *Proxy) configsAuthorization(ctx context.Context, op acl.Operation, rt kmsg.ConfigResourceType, name string) int16 {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if !p.allowed(ctx, op, acl.Topic, name) {
			return kerr.TopicAuthorizationFailed.Code
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !p.allowed(ctx, op, acl.Cluster, acl.ClusterName) {
			return kerr.ClusterAuthorizationFailed.Code
		}
	}
	return 0
}

func configType(t string) kmsg.ConfigType {
	switch t {
	case "int":
		return kmsg.ConfigTypeInt
	case "long":
		return kmsg.ConfigTypeLong
	case "double":
		return kmsg.ConfigTypeDouble
	case "list":
		return kmsg.ConfigTypeList
	case "boolean":
		return kmsg.ConfigTypeBoolean
	default:
		return kmsg.ConfigTypeString
	}
}
