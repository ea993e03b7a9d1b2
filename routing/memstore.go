package routing

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// MemStore is the in-process Store of `strait dev`. With a file path it persists every
// change (write to a temporary file, fsync, rename), so metadata survives restarts.
type MemStore struct {
	path string
	// Now is the clock leases expire by; nil is time.Now. Tests set it before use.
	Now func() time.Time

	mu struct {
		sync.Mutex
		state       memState
		subscribers map[int]chan struct{}
		nextSub     int
		closed      bool
	}
}

// memState is the whole metadata, also its on-disk JSON form.
type memState struct {
	Version        int64                      `json:"version"`
	ClusterID      string                     `json:"cluster_id"`
	Topics         map[string]*Topic          `json:"topics"`
	Nodes          map[int32]Node             `json:"nodes"`
	Proxies        map[int32]Proxy            `json:"proxies"`
	Leases         map[string]Lease           `json:"leases"`
	NextProducerID int64                      `json:"next_producer_id"`
	ACLs           map[string]ACL             `json:"acls,omitempty"`  // by ACL.key
	Scram          map[string]ScramCredential `json:"scram,omitempty"` // by scramKey
}

// NewMemStore opens an in-process store; path "" keeps metadata in memory only.
func NewMemStore(path string) (*MemStore, error) {
	s := &MemStore{path: path}
	s.mu.subscribers = make(map[int]chan struct{})
	s.mu.state = memState{ClusterID: newClusterID()}
	s.mu.state.ensureMaps()
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		return s, s.saveLocked()
	case err != nil:
		return nil, fmt.Errorf("routing: read metadata file: %w", err)
	}
	if err := json.Unmarshal(b, &s.mu.state); err != nil {
		return nil, fmt.Errorf("routing: metadata file %s is not valid JSON (restore it from a backup or remove it to start empty): %w", path, err)
	}
	s.mu.state.ensureMaps()
	return s, nil
}

func (st *memState) ensureMaps() {
	if st.Topics == nil {
		st.Topics = map[string]*Topic{}
	}
	if st.Nodes == nil {
		st.Nodes = map[int32]Node{}
	}
	if st.Proxies == nil {
		st.Proxies = map[int32]Proxy{}
	}
	if st.Leases == nil {
		st.Leases = map[string]Lease{}
	}
	if st.ACLs == nil {
		st.ACLs = map[string]ACL{}
	}
	if st.Scram == nil {
		st.Scram = map[string]ScramCredential{}
	}
}

// Snapshot implements Store.
func (s *MemStore) Snapshot(context.Context) (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, ErrClosed
	}
	st := &s.mu.state
	topics := make([]*Topic, 0, len(st.Topics))
	for _, t := range st.Topics {
		topics = append(topics, t.clone())
	}
	nodes := make([]Node, 0, len(st.Nodes))
	for _, n := range st.Nodes {
		nodes = append(nodes, n)
	}
	snap := newSnapshot(st.Version, st.ClusterID, topics, nodes)
	snap.Incarnation = st.ClusterID // an in-process store never loses its data
	snap.Proxies = maps.Clone(st.Proxies)
	snap.Leases = maps.Clone(st.Leases)
	snap.ACLs = sortACLs(slices.Collect(maps.Values(st.ACLs)))
	return snap, nil
}

// Subscribe implements Store.
func (s *MemStore) Subscribe() (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.mu.nextSub
	s.mu.nextSub++
	ch := make(chan struct{}, 1)
	s.mu.subscribers[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.mu.subscribers, id)
	}
}

// CreateTopic implements Store.
func (s *MemStore) CreateTopic(_ context.Context, t Topic) error {
	return s.change(func(st *memState) error {
		if _, ok := st.Topics[t.Name]; ok {
			return fmt.Errorf("routing: create topic %q: %w", t.Name, ErrTopicExists)
		}
		st.Topics[t.Name] = t.clone()
		return nil
	})
}

// DeleteTopic implements Store.
func (s *MemStore) DeleteTopic(_ context.Context, name string) error {
	return s.change(func(st *memState) error {
		if _, ok := st.Topics[name]; !ok {
			return fmt.Errorf("routing: delete topic %q: %w", name, ErrUnknownTopic)
		}
		delete(st.Topics, name)
		return nil
	})
}

// AddPartitions implements Store.
func (s *MemStore) AddPartitions(_ context.Context, topic string, expectCount int, parts []Partition) error {
	return s.change(func(st *memState) error {
		t, ok := st.Topics[topic]
		if !ok {
			return fmt.Errorf("routing: add partitions to %q: %w", topic, ErrUnknownTopic)
		}
		if len(t.Partitions) != expectCount {
			return fmt.Errorf("routing: add partitions to %q: it has %d, not %d: %w", topic, len(t.Partitions), expectCount, ErrConflict)
		}
		c := t.clone()
		for _, p := range parts {
			c.Partitions = append(c.Partitions, p.clone())
		}
		st.Topics[topic] = c
		return nil
	})
}

// SetTopicConfigs implements Store.
func (s *MemStore) SetTopicConfigs(_ context.Context, topic string, configs map[string]string, expectVersion int64) error {
	return s.change(func(st *memState) error {
		t, ok := st.Topics[topic]
		if !ok {
			return fmt.Errorf("routing: set configs of %q: %w", topic, ErrUnknownTopic)
		}
		if t.ConfigVersion != expectVersion {
			return fmt.Errorf("routing: set configs of %q: config version is %d, not %d: %w", topic, t.ConfigVersion, expectVersion, ErrConflict)
		}
		c := t.clone()
		c.Configs = maps.Clone(configs)
		c.ConfigVersion++
		st.Topics[topic] = c
		return nil
	})
}

// UpdatePartition implements Store.
func (s *MemStore) UpdatePartition(ctx context.Context, topic string, p Partition, expectPartitionEpoch int32) error {
	return updateOne(ctx, s, topic, p, expectPartitionEpoch)
}

// UpdatePartitions implements Store.
func (s *MemStore) UpdatePartitions(_ context.Context, changes []PartitionChange) ([]error, error) {
	var results []error
	err := s.change(func(st *memState) error {
		copies := map[string]*Topic{}
		get := func(name string) (*Topic, bool) {
			if c, ok := copies[name]; ok {
				return c, true
			}
			t, ok := st.Topics[name]
			if !ok {
				return nil, false
			}
			copies[name] = t.clone()
			return copies[name], true
		}
		var touched []string
		results, touched = applyPartitionChanges(changes, get)
		if len(touched) == 0 {
			return errNothingChanged
		}
		for _, name := range touched {
			st.Topics[name] = copies[name]
		}
		return nil
	})
	if errors.Is(err, errNothingChanged) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

// errNothingChanged tells change to keep the state and version as they are.
var errNothingChanged = errors.New("nothing changed")

// RegisterNode implements Store.
func (s *MemStore) RegisterNode(_ context.Context, n Node) error {
	return s.change(func(st *memState) error {
		st.Nodes[n.ID] = n
		return nil
	})
}

// RegisterProxy implements Store.
func (s *MemStore) RegisterProxy(_ context.Context, p Proxy) error {
	return s.change(func(st *memState) error {
		st.Proxies[p.ID] = p
		return nil
	})
}

// AcquireLease implements Store. A renewal by the holder changes only the expiry,
// which readers do not act on, so it neither bumps the version nor notifies.
func (s *MemStore) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	s.mu.Lock()
	cur, ok := s.mu.state.Leases[name]
	if ok && cur.Holder == holder {
		cur.ExpiresAt = now.Add(ttl)
		s.mu.state.Leases[name] = cur
		s.mu.Unlock()
		return cur, nil
	}
	s.mu.Unlock()
	var got Lease
	err := s.change(func(st *memState) error {
		cur, ok := st.Leases[name]
		if ok && cur.Holder != holder && now.Before(cur.ExpiresAt) {
			return fmt.Errorf("routing: lease %q: held by %q until %s: %w", name, cur.Holder, cur.ExpiresAt.Format(time.RFC3339), ErrLeaseHeld)
		}
		got = Lease{Holder: holder, Token: cur.Token + 1, ExpiresAt: now.Add(ttl)}
		st.Leases[name] = got
		return nil
	})
	return got, err
}

// ReleaseLease implements Store: the lease expires now, which bumps the version.
func (s *MemStore) ReleaseLease(_ context.Context, name, holder string) error {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	s.mu.Lock()
	cur, ok := s.mu.state.Leases[name]
	s.mu.Unlock()
	if !ok || cur.Holder != holder || !cur.ExpiresAt.After(now) {
		return nil
	}
	return s.change(func(st *memState) error {
		if cur, ok := st.Leases[name]; ok && cur.Holder == holder {
			cur.ExpiresAt = now
			st.Leases[name] = cur
		}
		return nil
	})
}

// AllocateProducerIDs implements Store.
func (s *MemStore) AllocateProducerIDs(_ context.Context, count int64) (int64, error) {
	var first int64
	err := s.change(func(st *memState) error {
		first = st.NextProducerID
		st.NextProducerID += count
		return nil
	})
	return first, err
}

// CreateACLs implements Store.
func (s *MemStore) CreateACLs(_ context.Context, acls []ACL) error {
	err := s.change(func(st *memState) error {
		added := false
		for _, a := range acls {
			if _, ok := st.ACLs[a.key()]; !ok {
				st.ACLs[a.key()] = a
				added = true
			}
		}
		if !added {
			return errNothingChanged
		}
		return nil
	})
	if errors.Is(err, errNothingChanged) {
		return nil
	}
	return err
}

// DeleteACLs implements Store.
func (s *MemStore) DeleteACLs(_ context.Context, acls []ACL) ([]ACL, error) {
	var deleted []ACL
	err := s.change(func(st *memState) error {
		for _, a := range acls {
			if _, ok := st.ACLs[a.key()]; ok {
				delete(st.ACLs, a.key())
				deleted = append(deleted, a)
			}
		}
		if len(deleted) == 0 {
			return errNothingChanged
		}
		return nil
	})
	if errors.Is(err, errNothingChanged) {
		err = nil
	}
	return deleted, err
}

// PutScramCredential implements Store. Credentials are not in snapshots: no version bump.
func (s *MemStore) PutScramCredential(_ context.Context, c ScramCredential) error {
	return s.changeQuietly(func(st *memState) error {
		st.Scram[scramKey(c.User, c.Mechanism)] = c
		return nil
	})
}

// DeleteScramCredential implements Store.
func (s *MemStore) DeleteScramCredential(_ context.Context, user, mechanism string) error {
	return s.changeQuietly(func(st *memState) error {
		if _, ok := st.Scram[scramKey(user, mechanism)]; !ok {
			return fmt.Errorf("routing: delete %s credential of %q: %w", mechanism, user, ErrUnknownCredential)
		}
		delete(st.Scram, scramKey(user, mechanism))
		return nil
	})
}

// ScramCredential implements Store.
func (s *MemStore) ScramCredential(_ context.Context, user, mechanism string) (ScramCredential, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ScramCredential{}, false, ErrClosed
	}
	c, ok := s.mu.state.Scram[scramKey(user, mechanism)]
	return c, ok, nil
}

// ScramCredentials implements Store.
func (s *MemStore) ScramCredentials(context.Context) ([]ScramCredential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, ErrClosed
	}
	return sortScram(slices.Collect(maps.Values(s.mu.state.Scram))), nil
}

// Close implements Store.
func (s *MemStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closed = true
	return nil
}

// change applies fn to a copy-on-write state, persists it, bumps the version and
// notifies subscribers. A failed fn or save leaves the state untouched.
func (s *MemStore) change(fn func(*memState) error) error {
	return s.apply(fn, true)
}

// changeQuietly is change for what snapshots do not show: no version, no notice.
func (s *MemStore) changeQuietly(fn func(*memState) error) error {
	return s.apply(fn, false)
}

func (s *MemStore) apply(fn func(*memState) error, visible bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	old := s.mu.state
	next := old
	next.Topics = make(map[string]*Topic, len(old.Topics))
	for k, v := range old.Topics {
		next.Topics[k] = v
	}
	next.Nodes = maps.Clone(old.Nodes)
	next.Proxies = maps.Clone(old.Proxies)
	next.Leases = maps.Clone(old.Leases)
	next.ACLs = maps.Clone(old.ACLs)
	next.Scram = maps.Clone(old.Scram)
	if err := fn(&next); err != nil {
		return err
	}
	if visible {
		next.Version++
	}
	s.mu.state = next
	if err := s.saveLocked(); err != nil {
		s.mu.state = old
		return err
	}
	if visible {
		s.notifyLocked()
	}
	return nil
}

func (s *MemStore) notifyLocked() {
	for _, ch := range s.mu.subscribers {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending; it will read the latest state
		}
	}
}

// saveLocked writes the state atomically: a crash leaves either the old or the new file.
func (s *MemStore) saveLocked() error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s.mu.state, "", "  ")
	if err != nil {
		return fmt.Errorf("routing: encode metadata: %w", err)
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, ".metadata-*.tmp")
	if err != nil {
		return fmt.Errorf("routing: save metadata: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("routing: save metadata: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("routing: save metadata: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("routing: save metadata: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("routing: save metadata: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("routing: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("routing: sync %s: %w", dir, err)
	}
	return nil
}

// newClusterID returns a Kafka-style cluster id: 16 random bytes, URL-safe base64.
func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var _ Store = (*MemStore)(nil)
