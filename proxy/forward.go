package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/routing"
)

var (
	errUnknownTopic   = errors.New("unknown topic or partition")
	errUnknownTopicID = errors.New("unknown topic id")
	errNoLeader       = errors.New("partition has no available leader")
	errInvalidRequest = errors.New("invalid request")
)

// route is where one requested partition goes: the node leading it now.
type route struct {
	node        int32
	leaderEpoch int32
}

// routeTo finds the leader node of a partition in the snapshot.
func routeTo(snap *routing.Snapshot, topic string, partition int32) (route, error) {
	p, ok := snap.Partition(topic, partition)
	if !ok {
		return route{}, errUnknownTopic
	}
	if _, ok := snap.Nodes[p.Leader]; !ok {
		return route{}, errNoLeader
	}
	return route{node: p.Leader, leaderEpoch: p.LeaderEpoch}, nil
}

// topicName resolves a topic named by id (request versions after KIP-516) or by name.
func topicName(snap *routing.Snapshot, name string, id [16]byte, byID bool) (string, error) {
	if !byID {
		return name, nil
	}
	t, ok := snap.TopicByID(id)
	if !ok {
		return "", errUnknownTopicID
	}
	return t.Name, nil
}

// nodeAnswer is one node's response to its share of a client request.
type nodeAnswer struct {
	resp kmsg.Response
	err  error
}

// sendAll sends each node its request concurrently and waits for every answer.
func (p *Proxy) sendAll(ctx context.Context, snap *routing.Snapshot, reqs map[int32]kmsg.Request) map[int32]nodeAnswer {
	answers := make(map[int32]nodeAnswer, len(reqs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, req := range reqs {
		wg.Go(func() {
			resp, err := p.send(ctx, snap, id, req)
			mu.Lock()
			answers[id] = nodeAnswer{resp, err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return answers
}

func (p *Proxy) send(ctx context.Context, snap *routing.Snapshot, node int32, req kmsg.Request) (kmsg.Response, error) {
	n, ok := snap.Nodes[node]
	if !ok {
		return nil, fmt.Errorf("node %d is not registered", node)
	}
	resp, err := p.nodes.Do(ctx, n.Addr, req)
	if err != nil {
		level := slog.LevelWarn
		if ctx.Err() != nil {
			level = slog.LevelDebug // the client went away or its request timed out
		} else {
			p.viewIsStale()
		}
		p.logger.Log(ctx, level, "forwarding to node failed; clients will retry after refreshing metadata",
			"node", node, "addr", n.Addr, "api", kmsg.NameForKey(req.Key()), "err", err)
		return nil, fmt.Errorf("forward %s to node %d at %s: %w", kmsg.NameForKey(req.Key()), node, n.Addr, err)
	}
	return resp, nil
}

// noteStale asks for a fresh routing view when a node's per-partition answer says
// the proxy's view of leadership is out of date.
func (p *Proxy) noteStale(code int16) {
	switch code {
	case kerr.NotLeaderForPartition.Code, kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code, kerr.UnknownTopicOrPartition.Code:
		p.viewIsStale()
	}
}

// partitionErrorCode maps routing failures and node transport failures to the Kafka
// code a client acts on: retriable codes make clients refresh metadata and retry.
func partitionErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, errUnknownTopicID):
		return kerr.UnknownTopicID.Code
	case errors.Is(err, errNoLeader):
		return kerr.LeaderNotAvailable.Code
	default: // the node could not be reached: it may have moved or be restarting
		return kerr.NotLeaderForPartition.Code
	}
}

// adminErrorCode maps the controller's refusals to Kafka codes.
func adminErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, routing.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, routing.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, routing.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, errUnknownTopicID):
		return kerr.UnknownTopicID.Code
	case errors.Is(err, routing.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, routing.ErrInvalidReplicationFactor), errors.Is(err, routing.ErrNoNodes):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, routing.ErrInvalidReplicaAssignment):
		return kerr.InvalidReplicaAssignment.Code
	case errors.Is(err, routing.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, routing.ErrPolicyViolation):
		return kerr.PolicyViolation.Code
	case errors.Is(err, errInvalidRequest):
		return kerr.InvalidRequest.Code
	case errors.Is(err, routing.ErrConflict):
		return kerr.NotController.Code // retriable: the client tries again on fresh state
	case errors.Is(err, routing.ErrStoreUnavailable):
		return kerr.RequestTimedOut.Code // retriable: the metadata store is unreachable for now
	default:
		return kerr.UnknownServerError.Code
	}
}

// errorMessage returns a pointer to err's text for responses' ErrorMessage fields.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// refreshAfter reloads the routing view after this proxy changed the metadata, so
// the client's next request already sees the change.
func (p *Proxy) refreshAfter(ctx context.Context, changed bool, what string) {
	if !changed {
		return
	}
	if err := p.view.Refresh(ctx); err != nil {
		p.logger.WarnContext(ctx, "refreshing metadata after "+what+" failed", "err", err)
	}
}
