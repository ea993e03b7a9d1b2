package proxy

// AlterConfigs, versions 0 to 2.
//
// Replaces a topic's config overrides with the request's set, as Kafka does (settings
// left out return to their defaults). Running partitions pick the change up as soon
// as their node sees the new metadata.
//
// Authorization: ALTER_CONFIGS on the topic or the cluster.
//
// Differences from Kafka: broker configs cannot be changed (INVALID_REQUEST).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
)

func (p *Proxy) alterConfigs(ctx context.Context, req *kmsg.AlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	changed := false
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if code := p.configsAuthorization(ctx, acl.AlterConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
			sr.ErrorCode = code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		if rr.ResourceType != kmsg.ConfigResourceTypeTopic {
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = kmsg.StringPtr("Strait changes topic configs only")
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		err := p.controller.AlterTopicConfigs(ctx, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			next := make(map[string]string, len(rr.Configs))
			for _, c := range rr.Configs {
				if c.Value != nil {
					next[c.Name] = *c.Value
				}
			}
			return next, nil
		})
		sr.ErrorCode, sr.ErrorMessage = adminErrorCode(err), errorMessage(err)
		changed = changed || (err == nil && !req.ValidateOnly)
		resp.Resources = append(resp.Resources, sr)
	}
	p.refreshAfter(ctx, changed, "changing configs")
	return resp, nil
}
