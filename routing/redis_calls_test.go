package routing

import (
	"context"
	"sync"
	"testing"
	"time"
)

// ObserveCalls sees every command the store sends, by name, and its failures: a
// stopped Redis fails the next ones.
func TestRedisStoreObserveCalls(t *testing.T) {
	srv := startRedis(t)
	s := newTestRedisStore(t, srv.URL(), "calls")
	var mu sync.Mutex
	calls, failed := map[string]int{}, map[string]int{}
	s.ObserveCalls(func(command string, took time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		calls[command]++
		if err != nil {
			failed[command]++
		}
	})
	ctx := context.Background()
	if err := s.RegisterNode(ctx, Node{ID: 1, Addr: "a:1"}); err != nil {
		t.Fatal(err)
	}
	mustSnapshot(t, s)
	srv.Stop()
	if err := s.RegisterNode(ctx, Node{ID: 2, Addr: "b:1"}); err == nil {
		t.Fatal("RegisterNode succeeded with Redis stopped")
	}
	mu.Lock()
	defer mu.Unlock()
	total, errs := 0, 0
	for cmd, n := range calls {
		total += n
		errs += failed[cmd]
	}
	if total < 3 || errs == 0 {
		t.Fatalf("observed calls %v, failures %v: want the commands of two registrations and a snapshot, some failed", calls, failed)
	}
}
