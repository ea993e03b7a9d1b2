package proxy

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strait-io/strait/routing"
)

var (
	errUnknownTopic   = errors.New("unknown topic or partition")
	errUnknownTopicID = errors.New("unknown topic id")
	errNoLeader       = errors.New("partition has no available leader")
	errInvalidRequest = errors.New("invalid request")
)

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
