package routing

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// ObserveCalls has fn called after each command the store sends to Redis (or each
// pipeline, as "pipeline"), with its lowercase name, how long it took and its error. A
// missing key (redis.Nil) is an answer, reported as no error. Metrics are its use:
// observability.ObserveRedisCalls.
func (s *RedisStore) ObserveCalls(fn func(command string, took time.Duration, err error)) {
	s.client.AddHook(callHook{observe: fn})
}

// callHook times commands for ObserveCalls.
type callHook struct {
	observe func(command string, took time.Duration, err error)
}

func (h callHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.observe("dial", time.Since(start), err)
		}
		return conn, err
	}
}

func (h callHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.observe(cmd.Name(), time.Since(start), answered(err))
		return err
	}
}

func (h callHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.observe("pipeline", time.Since(start), answered(err))
		return err
	}
}

// answered is err, unless it only says a key does not exist.
func answered(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}
