package routing

import (
	"context"
	"errors"
	"time"
)

// Errors a Store returns, wrapped with context; test them with errors.Is.
var (
	ErrTopicExists  = errors.New("topic already exists")
	ErrUnknownTopic = errors.New("unknown topic")
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
	// RegisterNode records a node and its address, replacing an earlier registration.
	RegisterNode(ctx context.Context, n Node) error
	// RegisterProxy records a proxy and its advertised address.
	RegisterProxy(ctx context.Context, p Proxy) error
	// AcquireLease gives holder the named lease for ttl if it is free, expired, or
	// already holder's (a renewal, which keeps the token). Otherwise ErrLeaseHeld.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// AllocateProducerIDs reserves count consecutive producer ids and returns the first.
	// Ids are never handed out twice, even across restarts (Kafka's AllocateProducerIds).
	AllocateProducerIDs(ctx context.Context, count int64) (first int64, err error)

	Close() error
}
