package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strait-io/strait/routing"
)

// TestTopicRecordsRepublishOncePerIncarnation: a node keeps one record per topic (not
// one per partition) and reads its records back only when the Store's incarnation
// changes, so renewing its lease every few seconds costs nothing per partition. A
// Store that lost its data gets every recorded topic back once, including topics
// recorded by earlier versions in a partition directory (strait-topic.json).
func TestTopicRecordsRepublishOncePerIncarnation(t *testing.T) {
	ctx := context.Background()
	store, err := routing.NewMemStore("")
	if err != nil {
		t.Fatalf("NewMemStore: %v", err)
	}
	if err := store.RegisterNode(ctx, routing.Node{ID: 1, Addr: "127.0.0.1:1"}); err != nil {
		t.Fatalf("RegisterNode: %v", err)
	}
	wide := routing.Topic{Name: "wide", ID: routing.NewTopicID()}
	for i := range int32(50) {
		wide.Partitions = append(wide.Partitions, routing.Partition{Index: i, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})
	}
	if err := store.CreateTopic(ctx, wide); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	before, _ := store.Snapshot(ctx)
	view := &pinnedView{snap: before}
	dir := t.TempDir()
	srv, err := New(Config{ID: 1, DataDir: dir}, view, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Reconcile(); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	records, _ := filepath.Glob(filepath.Join(dir, topicRecordsDir, "*.json"))
	perPartition, _ := filepath.Glob(filepath.Join(dir, "*", legacyTopicRecordFile))
	if len(records) != 1 || len(perPartition) != 0 {
		t.Fatalf("records: %v per topic, %v per partition; want one for the topic and none per partition", records, perPartition)
	}
	// A partition directory left by an earlier version, whose topic only it records.
	legacy := routing.Topic{Name: "legacy", ID: routing.NewTopicID(), Partitions: []routing.Partition{{Index: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}}
	b, _ := json.Marshal(topicRecord{Incarnation: before.Incarnation, Topic: legacy})
	if err := os.MkdirAll(filepath.Join(dir, "legacy-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "legacy-0", legacyTopicRecordFile), b, 0o644); err != nil {
		t.Fatal(err)
	}

	var created []string
	create := func(_ context.Context, t routing.Topic) error {
		created = append(created, t.Name)
		return nil
	}
	if err := srv.Republish(ctx, create); err != nil || len(created) != 0 {
		t.Fatalf("Republish in the same incarnation created %v (err %v); want nothing", created, err)
	}
	lost := *before
	lost.Incarnation, lost.Topics = "a-new-incarnation", nil
	view.pin(&lost)
	if err := srv.Republish(ctx, create); err != nil {
		t.Fatalf("Republish: %v", err)
	}
	slices.Sort(created)
	if !slices.Equal(created, []string{"legacy", "wide"}) {
		t.Fatalf("Republish after the Store lost its data created %v; want [legacy wide]", created)
	}
	if err := srv.Republish(ctx, create); err != nil || len(created) != 2 {
		t.Fatalf("a second Republish in the new incarnation created %v (err %v); want nothing more", created, err)
	}
}
