package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/strait-io/strait/coordinator/txn"
	"github.com/strait-io/strait/proxy"
)

// txnFlags configure the transaction coordinator, in `strait proxy` and `strait dev`.
type txnFlags struct {
	Partitions   int           // transaction.state.log.num.partitions
	MinISR       int           // transaction.state.log.min.isr
	MaxTimeout   time.Duration // transaction.max.timeout.ms
	IDExpiration time.Duration // transactional.id.expiration.ms
	AbortCheck   time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms
	LeaseTTL     time.Duration // how long a dead coordinator's partitions wait for a new one
}

func (c *txnFlags) flags(fs *flag.FlagSet, partitions int) {
	fs.IntVar(&c.Partitions, "transaction-partitions", partitions, "partitions of __transaction_state when it is created (transaction.state.log.num.partitions)")
	fs.IntVar(&c.MinISR, "transaction-min-isr", 2, "min.insync.replicas of __transaction_state, capped by its replication factor (transaction.state.log.min.isr)")
	fs.DurationVar(&c.MaxTimeout, "transaction-max-timeout", 15*time.Minute, "the longest transaction timeout a producer may ask for (transaction.max.timeout.ms)")
	fs.DurationVar(&c.IDExpiration, "transactional-id-expiration", 7*24*time.Hour, "forget a transactional id idle this long (transactional.id.expiration.ms)")
	fs.DurationVar(&c.LeaseTTL, "transaction-coordinator-lease-ttl", 15*time.Second, "how long the __transaction_state partitions of a proxy that died stay unserved before another proxy takes them over; renewed every third of it")
	fs.DurationVar(&c.AbortCheck, "transaction-abort-check-interval", 10*time.Second, "how often transactions past their timeout are aborted (transaction.abort.timed.out.transaction.cleanup.interval.ms)")
}

func (c *txnFlags) validate() error {
	switch {
	case c.Partitions < 1 || c.Partitions > 1000:
		return fmt.Errorf("--transaction-partitions %d: must be between 1 and 1000", c.Partitions)
	case c.MinISR < 1:
		return fmt.Errorf("--transaction-min-isr %d: must be at least 1", c.MinISR)
	case c.MaxTimeout <= 0 || c.IDExpiration <= 0 || c.AbortCheck <= 0:
		return fmt.Errorf("--transaction-max-timeout, --transactional-id-expiration and --transaction-abort-check-interval must be positive")
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("--transaction-coordinator-lease-ttl %s: must be at least 1s, or a slow Redis round trip loses the lease", c.LeaseTTL)
	}
	return nil
}

func (c txnFlags) config() proxy.TransactionsConfig {
	return proxy.TransactionsConfig{
		Partitions: int32(c.Partitions), MinISR: c.MinISR, AbortCheckInterval: c.AbortCheck, LeaseTTL: c.LeaseTTL,
		Machine: txn.Config{MaxTimeout: c.MaxTimeout, IDExpiration: c.IDExpiration},
	}
}
