package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrStoreUnavailable means the metadata store could not be reached or could not
// answer (Redis down, restarting, loading its data, or a replica that refuses
// writes). The change may or may not have been applied: callers re-read the metadata
// and retry. Proxies map it to a retriable Kafka error (REQUEST_TIMED_OUT for writes,
// LEADER_NOT_AVAILABLE for metadata), never to a permanent one.
var ErrStoreUnavailable = errors.New("metadata store unavailable")

// redisUnavailableReplies are the prefixes of Redis error replies that mean "not now"
// rather than "never": the server is loading, failing over, or out of memory.
var redisUnavailableReplies = []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "OOM"}

// wrapRedisErr turns a go-redis error into one that says what failed, where, and what
// the operator can do; outages wrap ErrStoreUnavailable as well as the cause.
func wrapRedisErr(op, addr string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("routing: %s: %w", op, err)
	}
	var reply redis.Error
	if errors.As(err, &reply) && !errors.Is(err, redis.ErrClosed) && !isUnavailableReply(reply.Error()) {
		return fmt.Errorf("routing: %s: unexpected reply from Redis at %s (is another program using the strait:* keys?): %w", op, addr, err)
	}
	return fmt.Errorf("routing: %s: no answer from Redis at %s (is Redis running at %s and reachable from here?): %w: %w", op, addr, addr, ErrStoreUnavailable, err)
}

func isUnavailableReply(msg string) bool {
	for _, p := range redisUnavailableReplies {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
