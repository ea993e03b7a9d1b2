package main

import (
	"testing"

	"github.com/strait-io/strait/observability"
	"github.com/strait-io/strait/routing"
)

// A partition is under-replicated when its ISR is smaller than its replicas, and
// offline when it has no leader or one that is not registered.
func TestClusterHealth(t *testing.T) {
	snap := &routing.Snapshot{
		Nodes: map[int32]routing.Node{1: {ID: 1}, 2: {ID: 2}},
		Topics: map[string]*routing.Topic{"t": {Name: "t", Partitions: []routing.Partition{
			{Index: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1},
			{Index: 1, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2},
			{Index: 2, Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: -1},
			{Index: 3, Replicas: []int32{3}, ISR: []int32{3}, Leader: 3},
		}}},
	}
	want := observability.ClusterStats{Partitions: 4, UnderReplicated: 2, Offline: 2}
	if got := clusterHealth(snap); got != want {
		t.Fatalf("clusterHealth = %+v, want %+v", got, want)
	}
}
