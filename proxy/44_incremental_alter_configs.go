package proxy

// IncrementalAlterConfigs, versions 0 to 1 (KIP-339).
//
// SET and DELETE change one setting each; APPEND and SUBTRACT edit list settings
// (cleanup.policy). The whole result is validated before anything changes.
//
// Authorization: ALTER_CONFIGS on the topic or the cluster.
//
// Differences from Kafka: broker configs cannot be changed (INVALID_REQUEST).

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) incrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	changed := false
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
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
		err := p.controller.AlterTopicConfigs(ctx, rr.ResourceName, req.ValidateOnly, func(current map[string]string) (map[string]string, error) {
			return applyIncremental(current, rr.Configs)
		})
		sr.ErrorCode, sr.ErrorMessage = adminErrorCode(err), errorMessage(err)
		changed = changed || (err == nil && !req.ValidateOnly)
		resp.Resources = append(resp.Resources, sr)
	}
	p.refreshAfter(ctx, changed, "changing configs")
	return resp, nil
}

// applyIncremental applies SET, DELETE, APPEND and SUBTRACT to a copy of the overrides.
func applyIncremental(current map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	if current == nil {
		current = map[string]string{}
	}
	for _, op := range ops {
		value := ""
		if op.Value != nil {
			value = *op.Value
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			current[op.Name] = value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(current, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			list, err := listValue(current, op.Name)
			if err != nil {
				return nil, err
			}
			current[op.Name] = strings.Join(editList(list, strings.Split(value, ","), op.Op == kmsg.IncrementalAlterConfigOpAppend), ",")
		default:
			return nil, fmt.Errorf("unknown operation %d on %s", op.Op, op.Name)
		}
	}
	return current, nil
}

// listValue returns the current items of a list setting, defaults included.
func listValue(current map[string]string, name string) ([]string, error) {
	c, ok := routing.LookupTopicConfig(name)
	if !ok || c.Type != "list" {
		return nil, fmt.Errorf("config %q is not a list: APPEND and SUBTRACT apply to list configs only", name)
	}
	v, set := current[name]
	if !set {
		v = c.Default
	}
	return strings.Split(v, ","), nil
}

func editList(list, items []string, add bool) []string {
	for _, item := range items {
		item = strings.TrimSpace(item)
		has := slices.Contains(list, item)
		switch {
		case add && !has && item != "":
			list = append(list, item)
		case !add && has:
			list = slices.DeleteFunc(list, func(s string) bool { return s == item })
		}
	}
	return list
}
