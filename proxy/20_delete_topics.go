package proxy

// DeleteTopics, versions 0 to 6.
//
// Topics are named by name, or from v6 by name or id. Deletion is synchronous in the
// metadata; nodes remove the data when they see the change. Internal topics cannot
// be deleted. Authorization: DELETE on each topic (TOPIC_AUTHORIZATION_FAILED).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) deleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	requested := req.Topics
	if req.Version < 6 {
		for _, name := range req.TopicNames {
			requested = append(requested, kmsg.DeleteTopicsRequestTopic{Topic: kmsg.StringPtr(name)})
		}
	}
	snap := p.view.Snapshot()
	deleted := false
	for _, rt := range requested {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name, err := deleteTopicName(snap, rt)
		if err == nil && !p.allowed(ctx, acl.Delete, acl.Topic, name) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if err == nil {
			st.Topic = &name
			err = p.controller.DeleteTopic(ctx, name)
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = adminErrorCode(err), errorMessage(err)
		} else {
			deleted = true
		}
		resp.Topics = append(resp.Topics, st)
	}
	p.refreshAfter(ctx, deleted, "deleting topics")
	return resp, nil
}

func deleteTopicName(snap *routing.Snapshot, rt kmsg.DeleteTopicsRequestTopic) (string, error) {
	if rt.Topic != nil {
		return *rt.Topic, nil
	}
	t, ok := snap.TopicByID(rt.TopicID)
	if !ok {
		return "", errUnknownTopicID
	}
	return t.Name, nil
}
