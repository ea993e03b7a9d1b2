package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors a Store returns, wrapped with context; test them with errors.Is.
var (
	ErrTopicExists  = errors.New("topic already exists")
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrUnknownPartition means the topic exists but has no partition of that index.
	// Proxies map it, like ErrUnknownTopic, to UNKNOWN_TOPIC_OR_PARTITION (3).
	ErrUnknownPartition = errors.New("unknown partition")
	// ErrConflict means a compare-and-set lost: the state it was based on has changed.
	ErrConflict = errors.New("metadata changed concurrently")
	ErrClosed   = errors.New("metadata store closed")
	// ErrLeaseHeld means another holder has the lease and it has not expired.
	ErrLeaseHeld = errors.New("lease held by another holder")
)

// Store keeps the cluster metadata. Every method that changes it bumps the version and
// notifies subscribers; changes that depend on what the caller read are conditional
// (compare-and-set) so two writers can never both win.
type Store interface {
	// Snapshot reads the current metadata.
	Snapshot(ctx context.Context) (*Snapshot, error)
	// Subscribe returns a channel that receives a value after changes (several changes
	// may coalesce into one wake-up) and a func that ends the subscription.
	Subscribe() (changes <-chan struct{}, cancel func())

	// CreateTopic adds a topic; ErrTopicExists if the name is taken.
	CreateTopic(ctx context.Context, t Topic) error
	// DeleteTopic removes a topic; ErrUnknownTopic if it does not exist.
	DeleteTopic(ctx context.Context, name string) error
	// SetTopicConfigs replaces a topic's config overrides if its ConfigVersion is still
	// expectVersion (else ErrConflict), and bumps ConfigVersion.
	SetTopicConfigs(ctx context.Context, topic string, configs map[string]string, expectVersion int64) error
	// AddPartitions appends partitions to a topic that has exactly expectCount of them
	// (else ErrConflict).
	AddPartitions(ctx context.Context, topic string, expectCount int, parts []Partition) error
	// UpdatePartition replaces partition p.Index of the topic if its PartitionEpoch is
	// still expectPartitionEpoch, and stores p with PartitionEpoch expectPartitionEpoch+1
	// (p.PartitionEpoch is ignored). Callers set Leader, LeaderEpoch and ISR themselves.
	// It returns ErrConflict if the epoch moved, ErrUnknownTopic or ErrUnknownPartition.
	UpdatePartition(ctx context.Context, topic string, p Partition, expectPartitionEpoch int32) error
	// UpdatePartitions applies several UpdatePartition changes at once, for failing
	// over many partitions in one write. Each change succeeds or fails on its own; the
	// successful ones are written together, atomically, under one new version (none is
	// written, and the version stays, if all fail). Changes apply in order, so a later
	// change of the same partition sees the earlier one's epoch. results[i] is the
	// outcome of changes[i]; err, if not nil, means nothing was written (the store
	// failed) and results is nil.
	UpdatePartitions(ctx context.Context, changes []PartitionChange) (results []error, err error)
	// RegisterNode records a node and its address, replacing an earlier registration.
	RegisterNode(ctx context.Context, n Node) error
	// RegisterProxy records a proxy and its advertised address.
	RegisterProxy(ctx context.Context, p Proxy) error
	// AcquireLease gives holder the named lease for ttl if it is free, expired, or
	// already holder's (a renewal, which keeps the token). Otherwise ErrLeaseHeld.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// ReleaseLease ends holder's hold on the named lease now, for a process that stops
	// cleanly: the next holder need not wait out the TTL. The token is kept, so the next
	// holder's is still higher (fencing). Releasing a lease one does not hold does
	// nothing and is no error.
	ReleaseLease(ctx context.Context, name, holder string) error
	// AllocateProducerIDs reserves count consecutive producer ids and returns the first.
	// Ids are never handed out twice, even across restarts (Kafka's AllocateProducerIds).
	AllocateProducerIDs(ctx context.Context, count int64) (first int64, err error)

	// CreateACLs adds ACL bindings; those already stored stay as they are. A change
	// bumps the version, so caches (and every proxy's authorizer) see it at once.
	CreateACLs(ctx context.Context, acls []ACL) error
	// DeleteACLs removes the given bindings and returns those that were stored.
	DeleteACLs(ctx context.Context, acls []ACL) (deleted []ACL, err error)

	// PutScramCredential stores a user's credential for its mechanism, replacing any.
	PutScramCredential(ctx context.Context, c ScramCredential) error
	// DeleteScramCredential removes one; ErrUnknownCredential if there is none.
	DeleteScramCredential(ctx context.Context, user, mechanism string) error
	// ScramCredential reads one; found is false if there is none.
	ScramCredential(ctx context.Context, user, mechanism string) (c ScramCredential, found bool, err error)
	// ScramCredentials reads every credential, ordered by user and mechanism.
	ScramCredentials(ctx context.Context) ([]ScramCredential, error)

	Close() error
}

// PartitionChange is one conditional partition update of UpdatePartitions: replace
// partition Partition.Index of Topic if its PartitionEpoch is ExpectPartitionEpoch.
type PartitionChange struct {
	Topic                string
	Partition            Partition // PartitionEpoch is ignored: the store sets expect+1
	ExpectPartitionEpoch int32
}

// applyPartitionChanges applies changes in order to the topics that get returns (copies
// the caller may modify) and returns one result per change. Both stores use it, so they
// judge changes alike; touched lists the topics with at least one applied change.
func applyPartitionChanges(changes []PartitionChange, get func(name string) (*Topic, bool)) (results []error, touched []string) {
	results = make([]error, len(changes))
	for i, ch := range changes {
		results[i] = applyPartitionChange(ch, get)
		if results[i] == nil && !slices.Contains(touched, ch.Topic) {
			touched = append(touched, ch.Topic)
		}
	}
	return results, touched
}

func applyPartitionChange(ch PartitionChange, get func(name string) (*Topic, bool)) error {
	op := fmt.Sprintf("update partition %s-%d", ch.Topic, ch.Partition.Index)
	t, ok := get(ch.Topic)
	if !ok {
		return fmt.Errorf("routing: %s: %w", op, ErrUnknownTopic)
	}
	i := ch.Partition.Index
	if i < 0 || int(i) >= len(t.Partitions) {
		return fmt.Errorf("routing: %s: the topic has %d partitions: %w", op, len(t.Partitions), ErrUnknownPartition)
	}
	if cur := t.Partitions[i].PartitionEpoch; cur != ch.ExpectPartitionEpoch {
		return fmt.Errorf("routing: %s: partition epoch is %d, not %d: %w", op, cur, ch.ExpectPartitionEpoch, ErrConflict)
	}
	next := ch.Partition.clone()
	next.PartitionEpoch = ch.ExpectPartitionEpoch + 1
	t.Partitions[i] = next
	return nil
}

// updateOne is UpdatePartition in terms of UpdatePartitions.
func updateOne(ctx context.Context, s Store, topic string, p Partition, expectPartitionEpoch int32) error {
	results, err := s.UpdatePartitions(ctx, []PartitionChange{{Topic: topic, Partition: p, ExpectPartitionEpoch: expectPartitionEpoch}})
	if err != nil {
		return err
	}
	return results[0]
}
