package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// An unreachable Redis fails the constructor quickly, with an error that names the
// URL but not its password.
func TestRedisStoreUnreachable(t *testing.T) {
	url := fmt.Sprintf("redis://:s3cret@127.0.0.1:%d/0", freePort(t))
	start := time.Now()
	_, err := NewRedisStore(context.Background(), url, "c", discard())
	if err == nil {
		t.Fatal("NewRedisStore of a closed port succeeded")
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("NewRedisStore took %s to fail", took)
	}
	msg := err.Error()
	if strings.Contains(msg, "s3cret") || !strings.Contains(msg, "127.0.0.1") || !strings.Contains(msg, "is Redis running") {
		t.Fatalf("error = %q: want the address, a hint and no password", msg)
	}
	if !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("error = %v, want ErrStoreUnavailable", err)
	}
}

func TestRedisStoreBadArguments(t *testing.T) {
	for _, tc := range []struct{ url, cluster string }{
		{"http://:s3cret@host:1", "c"},
		{"redis://:s3cret@host:1/notadb", "c"},
		{"redis://127.0.0.1:1", ""},
		{"redis://127.0.0.1:1", "a}b"},
	} {
		_, err := NewRedisStore(context.Background(), tc.url, tc.cluster, discard())
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("NewRedisStore(%q, %q) = %v: want an error without the password", tc.url, tc.cluster, err)
		}
	}
}

// Clusters sharing a Redis do not see each other's metadata.
func TestRedisStoreClustersAreSeparate(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newTestRedisStore(t, srv.URL(), "a")
	b := newTestRedisStore(t, srv.URL(), "b")
	if err := a.CreateTopic(ctx, testTopic("t", 1)); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(ctx, testTopic("t", 2)); err != nil {
		t.Fatalf("same topic name in another cluster: %v", err)
	}
	sa, sb := mustSnapshot(t, a), mustSnapshot(t, b)
	if len(sa.Topics["t"].Partitions) != 1 || len(sb.Topics["t"].Partitions) != 2 || sa.ClusterID == sb.ClusterID {
		t.Fatalf("clusters mixed: a=%+v b=%+v", sa, sb)
	}
	again := newTestRedisStore(t, srv.URL(), "a")
	if got := mustSnapshot(t, again); got.ClusterID != sa.ClusterID || got.Version != sa.Version {
		t.Fatalf("second store of cluster a: id %s version %d, want %s %d", got.ClusterID, got.Version, sa.ClusterID, sa.Version)
	}
}

// A refresh decodes only the topics that changed; the others come from the LRU.
func TestRedisStoreDecodesOnlyChangedTopics(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	s := newTestRedisStore(t, srv.URL(), "c")
	const n = 200
	for i := range n {
		if err := s.CreateTopic(ctx, testTopic(fmt.Sprintf("t%d", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	mustSnapshot(t, s)
	before := s.decodes.Load()
	if err := s.AddPartitions(ctx, "t7", 1, []Partition{newPartition(1, []int32{1})}); err != nil {
		t.Fatal(err)
	}
	snap := mustSnapshot(t, s)
	if got := s.decodes.Load() - before; got != 1 {
		t.Fatalf("refresh after one change decoded %d topics, want 1", got)
	}
	if len(snap.Topics) != n || len(snap.Topics["t7"].Partitions) != 2 {
		t.Fatalf("snapshot: %d topics, t7 has %d partitions", len(snap.Topics), len(snap.Topics["t7"].Partitions))
	}
}

// While Redis is down, writes and reads fail quickly with ErrStoreUnavailable; once
// it is back (empty, as it keeps no data) the store works again and subscribers are
// woken so caches reload.
func TestRedisStoreOutage(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	s := newTestRedisStore(t, srv.URL(), "c")
	changes, cancel := s.Subscribe()
	defer cancel()
	if err := s.RegisterNode(ctx, Node{ID: 1, Addr: "a:1"}); err != nil {
		t.Fatal(err)
	}
	before := mustSnapshot(t, s)
	drain(changes, 200*time.Millisecond)

	srv.Stop()
	start := time.Now()
	err := s.RegisterNode(ctx, Node{ID: 2, Addr: "b:1"})
	if !errors.Is(err, ErrStoreUnavailable) || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("write during the outage = %v, want ErrStoreUnavailable naming %s", err, srv.Addr())
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("write took %s to fail", took)
	}
	if _, err := s.Snapshot(ctx); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Snapshot during the outage = %v, want ErrStoreUnavailable", err)
	}
	drain(changes, 100*time.Millisecond)

	srv.Start()
	waitWake(t, changes, "Redis came back") // resubscribed
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.RegisterNode(ctx, Node{ID: 2, Addr: "b:1"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write after Redis came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := mustSnapshot(t, s)
	if after.Version <= before.Version || after.ClusterID != before.ClusterID {
		t.Fatalf("after the restart: version %d cluster %s, want > %d and %s", after.Version, after.ClusterID, before.Version, before.ClusterID)
	}
	waitWake(t, changes, "a write after Redis came back")
}

// Redis restarted without persistence (here: flushed) comes back empty. The store
// starts a new incarnation that keeps the cluster id, continues the version above
// the old one (so caches take the new snapshot) and never reissues producer ids.
func TestRedisStoreReset(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	s := newTestRedisStore(t, srv.URL(), "c")
	if err := s.CreateTopic(ctx, testTopic("t", 1)); err != nil {
		t.Fatal(err)
	}
	pid, err := s.AllocateProducerIDs(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := NewCache(ctx, s, time.Hour, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	before := cache.Snapshot()
	inc := s.Incarnation()

	if err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	changed := cache.Changed()
	if err := s.RegisterNode(ctx, Node{ID: 1, Addr: "a:1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("the cache did not take the snapshot of the new incarnation")
	}
	after := cache.Snapshot()
	if after.Version <= before.Version || after.ClusterID != before.ClusterID || len(after.Topics) != 0 || len(after.Nodes) != 1 {
		t.Fatalf("after the reset: version %d (was %d), cluster %s (was %s), topics %v, nodes %v",
			after.Version, before.Version, after.ClusterID, before.ClusterID, sortedKeys(after.Topics), after.Nodes)
	}
	if got := s.Incarnation(); got == inc || got == "" {
		t.Fatalf("incarnation %q after the reset, was %q", got, inc)
	}
	next, err := s.AllocateProducerIDs(ctx, 1000)
	if err != nil || next < pid+1000 {
		t.Fatalf("producer ids after the reset start at %d (%v), the last block was [%d,+1000)", next, err, pid)
	}
	// A recreated topic of the same name is decoded anew, not served from the LRU.
	fresh := testTopic("t", 3)
	if err := s.CreateTopic(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if got := mustSnapshot(t, s).Topics["t"]; got.ID != fresh.ID || len(got.Partitions) != 3 {
		t.Fatalf("recreated topic = %+v", got)
	}
}
