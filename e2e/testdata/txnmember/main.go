// Command txnmember is a consume-transform-produce member for e2e's
// TestTransactionsExactlyOnceChain: a franz-go GroupTransactSession reading topic in as a
// member of group, writing each record to topic out and committing the group's offsets in
// the same transaction (KIP-98, KIP-447). It prints "committed N" after each commit.
// SIGTERM ends it cleanly (exit 0); killed with SIGKILL, it dies with a transaction open.
//
//	txnmember BOOTSTRAP GROUP TRANSACTIONAL_ID IN OUT
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	bootstrap, group, id, in, out := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(bootstrap), kgo.TransactionalID(id), kgo.ConsumerGroup(group), kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(), kgo.DefaultProduceTopic(out),
		kgo.TransactionTimeout(10*time.Second), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(20000),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "session:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	total := 0
	for {
		fetches := sess.PollRecords(ctx, 20)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			sess.Close()
			return
		}
		if err := sess.Begin(); err != nil {
			fmt.Fprintln(os.Stderr, "begin:", err)
			os.Exit(1)
		}
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			sess.Produce(context.Background(), &kgo.Record{Key: r.Key, Value: r.Value}, nil)
			n++
		})
		committed, err := sess.End(context.Background(), kgo.TryCommit)
		if err != nil {
			fmt.Fprintln(os.Stderr, "end:", err)
		}
		if committed && n > 0 {
			total += n
			fmt.Printf("committed %d\n", total)
		}
		time.Sleep(20 * time.Millisecond) // let transactions interleave with the kill
	}
}
