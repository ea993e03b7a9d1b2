package replica_test

import (
	"fmt"
	"time"

	"github.com/strait-io/strait/partitionlog/replica"
)

// The node drives a Leader under its own lock and performs the ISR changes it
// proposes by compare-and-set in the metadata store.
func Example() {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := replica.NewLeader(replica.Config{}, 1, []int32{1, 2, 3}, []int32{1, 2, 3}, 7, 0, 0, start)

	l.LocalAppended(10, start)
	l.FollowerFetched(2, 10, start.Add(time.Second))
	l.FollowerFetched(3, 4, start.Add(2*time.Second))
	fmt.Println("hw:", l.HighWatermark())

	// Replica 3 has not caught up for more than 30s: propose dropping it.
	isr, ok := l.Propose(start.Add(31 * time.Second))
	fmt.Println("propose:", isr, ok, "hw while pending:", l.HighWatermark())

	// The compare-and-set won: 3 no longer holds the HW back.
	l.Committed(isr)
	fmt.Println("isr:", l.ISR(), "hw:", l.HighWatermark())
	// Output:
	// hw: 4
	// propose: [1 2] true hw while pending: 4
	// isr: [1 2] hw: 10
}
