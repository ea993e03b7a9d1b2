package routing

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisPingEvery is how long the subscription may be silent before a PING checks
// that the connection still works.
const redisPingEvery = 5 * time.Second

// watch turns messages on the changes channel into wake-ups. go-redis reconnects
// and subscribes again on the next receive after a connection fails; each
// confirmation of the subscription wakes subscribers too, as changes published while
// the connection was down are lost.
func (s *RedisStore) watch(ctx context.Context) {
	defer close(s.loopDone)
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	down := false
	for {
		msg, err := s.pubsub.ReceiveTimeout(ctx, redisPingEvery)
		if ctx.Err() != nil {
			return
		}
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() && !down {
			err = s.pubsub.Ping(ctx) // the answer arrives as a *redis.Pong
		}
		if err != nil {
			if !down {
				s.logger.Warn("lost the Redis subscription to metadata changes; retrying (caches poll meanwhile)", "err", err)
				down = true
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		switch m := msg.(type) {
		case *redis.Subscription:
			if down {
				s.logger.Info("subscribed again to Redis metadata changes")
				down = false
			}
			if m.Kind == "subscribe" {
				s.notify()
			}
		case *redis.Message:
			s.notify()
		}
	}
}
