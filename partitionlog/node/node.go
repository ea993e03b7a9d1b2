package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/strait-io/strait/internal/authz"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/partitionlog"
	"github.com/strait-io/strait/routing"
)

// APIs is what a node serves itself, to proxies, peers and clients alike (relay.go says
// what it relays). Produce and Fetch stop at the last versions that name topics (v12):
// proxies translate topic ids, and clients talking to a node directly use names.
// ListOffsets stops at v6 because later versions add special timestamps (max timestamp,
// tiered offsets) the log does not track.
var APIs = wire.APITable{
	0:  {Min: 3, Max: 12}, // Produce: v3 is the first with v2 record batches
	1:  {Min: 4, Max: 12}, // Fetch
	2:  {Min: 1, Max: 6},  // ListOffsets
	18: {Min: 0, Max: 4},  // ApiVersions
	21: {Min: 0, Max: 2},  // DeleteRecords
	23: {Min: 0, Max: 4},  // OffsetForLeaderEpoch
	27: {Min: 0, Max: 1},  // WriteTxnMarkers: from transaction coordinators (proxies)
	61: {Min: 0, Max: 0},  // DescribeProducers
}

// View is the routing metadata the node reads; *routing.Cache satisfies it.
type View interface {
	Snapshot() *routing.Snapshot
	Changed() <-chan struct{}
}

// Config configures a node.
type Config struct {
	ID      int32
	DataDir string
	Hooks   partitionlog.Hooks
	// RetentionCheckInterval is how often retention runs (log.retention.check.interval.ms,
	// default 5 minutes); CleanerBackoff how often compacted topics are cleaned
	// (log.cleaner.backoff.ms, default 15 seconds).
	RetentionCheckInterval time.Duration
	CleanerBackoff         time.Duration
	// ProducerIDExpiration forgets, in each partition, producers that wrote nothing for
	// this long and have no transaction open (producer.id.expiration.ms, KIP-854, default
	// a day), checked every ProducerIDExpirationCheck
	// (producer.id.expiration.check.interval.ms, default 10 minutes).
	ProducerIDExpiration      time.Duration
	ProducerIDExpirationCheck time.Duration
	// ZeroCopy answers fetches with file ranges that the wire server sends with
	// sendfile (its ZeroCopy must be on too, or they are copied).
	ZeroCopy bool
	// ReplicaLagTimeMax is how long a follower may lag before it leaves the ISR
	// (replica.lag.time.max.ms, default 30 seconds).
	ReplicaLagTimeMax time.Duration
	// AlterISR writes a partition's new ISR through a compare-and-set on its partition
	// epoch, refused if this node no longer leads it at leaderEpoch (Kafka's
	// AlterPartition). Nil means ISR changes are never proposed.
	AlterISR func(ctx context.Context, topic string, index int32, leaderEpoch int32, isr []int32, partitionEpoch int32) error
	// Fenced reports that this node lost its registration lease: the controller may have
	// elected other leaders, so it must stop accepting writes as a leader.
	Fenced func() bool
	// Relay answers, for ordinary clients (redirect mode), the requests for APIs the
	// node does not own, by asking a proxy; RelayAPIs is the versions that proxy serves,
	// which the node advertises for them. Nil Relay: the node serves APIs alone.
	Relay     Relay
	RelayAPIs wire.APITable
	// PeerTLS, when set, makes connections to peer nodes TLS with the config it
	// returns, presenting this node's certificate (mTLS between nodes).
	PeerTLS func() (*tls.Config, error)
	// Tracer starts the spans of this node's own work, such as its fetches as a
	// follower; nil when tracing is off, which skips them.
	Tracer trace.Tracer
	// Authz applies the cluster's ACLs to ordinary clients' requests (redirect mode);
	// nil allows everything.
	Authz *authz.Enforcer
}

// Server holds this node's partitions and answers Kafka requests for them.
type Server struct {
	cfg    Config
	view   View
	logger *slog.Logger
	apis   wire.APITable // what ApiVersions advertises: APIs, and the relayed ones
	// readable wakes long-polling fetches: records were appended or a high watermark
	// moved.
	readable broadcast
	sessions *fetchSessions // incremental fetch sessions (KIP-227) of fetchers reading here
	// reconciled counts the Reconcile runs: routes to replicas found before the last one
	// may be stale.
	reconciled atomic.Int64
	records    *topicRecords // topics as the Store described them, to republish if it loses them
	peers      *wire.Pool    // to other nodes, for replication
	isrKick    chan struct{}
	ctx        context.Context // ends at Close; follower fetchers run under it
	cancel     context.CancelFunc
	// background counts Run, the goroutines it starts and the fetchers, so Close can
	// wait for them; none starts once stopping is set.
	background struct {
		sync.Mutex
		running  sync.WaitGroup
		stopping bool
	}
	// consumerReads counts the partitions answered to consumers, by role (KIP-392).
	consumerReads consumerReads

	mu struct {
		sync.Mutex
		partitions map[partitionKey]*replica
		closed     bool
	}
	// fetchers replicate what this node follows, one per leader node. Their own lock:
	// it is taken under a replica's state lock, which s.mu is taken outside of.
	fetchers struct {
		sync.Mutex
		byLeader map[int32]*fetcher
	}
}

type partitionKey struct {
	topic string
	index int32
}

// replica is one partition this node holds.
type replica struct {
	key      partitionKey
	topicID  routing.TopicID
	readable *broadcast // the server's: wakes fetches when the high watermark moves
	log      *partitionlog.Log
	// openedAt is the metadata version the replica was opened from: a reconcile
	// working from an older snapshot must not take it for a partition to remove.
	openedAt int64
	// incarnation is the Store incarnation that placed it: a Store that lost its data
	// (a new incarnation) does not list it, yet it was never deleted.
	incarnation string
	// configVersion is the topic config version applied to the log.
	configVersion int64
	state         leadership
	// changes counts what fetchers of this partition may want to hear of: appends,
	// high-watermark and log-start moves. A fetch session skips a partition whose count
	// did not move since it last looked. Moved by changed, which tells watchers.
	changes  atomic.Uint64
	watchers watchers // the fetch session partitions reading this one (fetch_news.go)
}

// New returns a node server; call Reconcile once before serving, then Run.
func New(cfg Config, view View, logger *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("node %d: create data dir: %w", cfg.ID, err)
	}
	if cfg.RetentionCheckInterval <= 0 {
		cfg.RetentionCheckInterval = 5 * time.Minute
	}
	if cfg.CleanerBackoff <= 0 {
		cfg.CleanerBackoff = 15 * time.Second
	}
	if cfg.ProducerIDExpiration <= 0 {
		cfg.ProducerIDExpiration = partitionlog.DefaultProducerIDExpiration
	}
	if cfg.ProducerIDExpirationCheck <= 0 {
		cfg.ProducerIDExpirationCheck = 10 * time.Minute
	}
	if cfg.ReplicaLagTimeMax <= 0 {
		cfg.ReplicaLagTimeMax = 30 * time.Second
	}
	s := &Server{cfg: cfg, view: view, logger: logger.With("node", cfg.ID), isrKick: make(chan struct{}, 1),
		sessions: newFetchSessions(), records: newTopicRecords(cfg.DataDir), apis: APIs}
	if cfg.Relay != nil {
		s.apis = servedAPIs(cfg.RelayAPIs)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.peers = wire.NewPool(wire.PoolOptions{ClientOptions: wire.ClientOptions{
		ClientID: fmt.Sprintf("strait-replica-%d", cfg.ID), Internal: true, Logger: s.logger, TLS: cfg.PeerTLS,
	}})
	s.mu.partitions = make(map[partitionKey]*replica)
	s.fetchers.byLeader = make(map[int32]*fetcher)
	return s, nil
}

// ServeKafka implements wire.Handler: the node's own APIs here, the others through the
// relay (relay.go); an ordinary client's with the ACLs applied (authorize.go).
func (s *Server) ServeKafka(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	if s.cfg.Authz.On() && !req.Internal {
		return s.authorized(ctx, req)
	}
	return s.serve(ctx, req)
}

func (s *Server) serve(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	switch body := req.Body.(type) {
	case *kmsg.ProduceRequest:
		return s.produce(ctx, body)
	case *kmsg.FetchRequest:
		return s.fetch(ctx, body), nil
	case *kmsg.ListOffsetsRequest:
		return s.listOffsets(body), nil
	case *kmsg.OffsetForLeaderEpochRequest:
		return s.offsetForLeaderEpoch(body), nil
	case *kmsg.DeleteRecordsRequest:
		return s.deleteRecords(body), nil
	case *kmsg.WriteTxnMarkersRequest:
		return s.writeTxnMarkers(ctx, body), nil
	case *kmsg.DescribeProducersRequest:
		return s.describeProducers(body), nil
	case *kmsg.ApiVersionsRequest:
		return s.apis.AnswerApiVersions(body), nil
	}
	return s.relay(ctx, req)
}

// Run reconciles local partitions with the routing metadata, and runs retention and
// compaction, until ctx ends.
func (s *Server) Run(ctx context.Context) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { // Close ends Run too
		<-s.ctx.Done()
		stop()
	}()
	if !s.enterBackground() {
		return
	}
	defer s.background.running.Done()
	s.goBackground(func() { s.maintain(ctx) })
	s.goBackground(func() { s.manageISR(ctx) })
	for {
		changed := s.view.Changed()
		if err := s.Reconcile(); err != nil {
			s.logger.Error("reconciling partitions failed; will retry on the next metadata change", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// Reconcile opens every partition the metadata places here, and closes and deletes
// every local partition it no longer does (its topic was deleted or moved).
func (s *Server) Reconcile() error {
	snap := s.view.Snapshot()
	var errs []error
	for key, r := range s.openPartitions() {
		if !s.assigned(snap, key, r.topicID) {
			errs = append(errs, s.remove(key, snap))
		}
	}
	for _, name := range snap.TopicNames() {
		t := snap.Topics[name]
		held := false
		for _, p := range t.Partitions {
			if p.HasReplica(s.cfg.ID) {
				held = true
				r, err := s.partition(t, p.Index, snap)
				if err == nil {
					err = s.applyConfig(r, t)
					s.applyRole(partitionKey{t.Name, p.Index}, r, p)
				}
				errs = append(errs, err)
			}
		}
		if held {
			errs = append(errs, s.records.record(snap.Incarnation, t))
		}
	}
	errs = append(errs, s.removeStrayDirs(snap), s.records.forget(snap))
	s.reconciled.Add(1)
	s.sessions.wakeAll() // new routes: each session looks at all its partitions again
	return errors.Join(errs...)
}

// Close closes every partition log.
func (s *Server) Close() error {
	s.background.Lock()
	s.background.stopping = true
	s.background.Unlock()
	s.cancel()
	s.background.running.Wait() // nothing writes to the data directory once Close returns
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closed = true
	var errs []error
	for key, r := range s.mu.partitions {
		r.stopReplication()
		errs = append(errs, r.log.Close())
		delete(s.mu.partitions, key)
	}
	errs = append(errs, s.peers.Close())
	return errors.Join(errs...)
}

// lookup finds the partition a request names and checks this node leads it.
func (s *Server) lookup(snap *routing.Snapshot, topic string, index int32) (*replica, routing.Partition, error) {
	return s.lookupReplica(snap, topic, index, false)
}

// lookupReplica finds the partition a request names and checks this node leads it, or,
// with followerOK, holds a replica of it (a consumer's fetch, KIP-392).
func (s *Server) lookupReplica(snap *routing.Snapshot, topic string, index int32, followerOK bool) (*replica, routing.Partition, error) {
	t, ok := snap.Topic(topic)
	if !ok {
		return nil, routing.Partition{}, errUnknownPartition
	}
	p, ok := snap.Partition(topic, index)
	if !ok {
		return nil, routing.Partition{}, errUnknownPartition
	}
	if p.Leader != s.cfg.ID && !(followerOK && p.HasReplica(s.cfg.ID)) {
		return nil, p, errNotLeader
	}
	r, err := s.partition(t, index, snap)
	if err != nil {
		return nil, p, err
	}
	s.applyRole(partitionKey{topic, index}, r, p) // opened on demand: take its role now
	return r, p, nil
}

// partition returns the open replica, opening its log first if needed; snap is the
// snapshot that placed it here.
func (s *Server) partition(t *routing.Topic, index int32, snap *routing.Snapshot) (*replica, error) {
	key := partitionKey{t.Name, index}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, partitionlog.ErrClosed
	}
	if r, ok := s.mu.partitions[key]; ok && r.topicID == t.ID {
		return r, nil
	}
	dir := s.dir(key)
	if err := claimDir(dir, t.ID); err != nil {
		return nil, err
	}
	if err := s.records.record(snap.Incarnation, t); err != nil {
		return nil, err
	}
	log, err := partitionlog.Open(dir, logConfig(t), s.cfg.Hooks, s.logger.With("topic", t.Name, "partition", index))
	if err != nil {
		return nil, fmt.Errorf("node %d: open %s: %w", s.cfg.ID, dir, err)
	}
	r := &replica{key: key, topicID: t.ID, readable: &s.readable, log: log, openedAt: snap.Version, incarnation: snap.Incarnation, configVersion: t.ConfigVersion}
	s.mu.partitions[key] = r
	return r, nil
}

// goBackground runs fn on a goroutine Close waits for, unless Close has begun.
func (s *Server) goBackground(fn func()) {
	if s.enterBackground() {
		go func() {
			defer s.background.running.Done()
			fn()
		}()
	}
}

// enterBackground counts one more goroutine for Close to wait for, unless Close has
// begun; the goroutine calls s.background.running.Done when it ends.
func (s *Server) enterBackground() bool {
	s.background.Lock()
	defer s.background.Unlock()
	if s.background.stopping {
		return false
	}
	s.background.running.Add(1)
	return true
}

// ServePeerLocally makes this node call peer node s, which serves addr in this
// process, directly rather than through a socket (`strait dev`).
func (s *Server) ServePeerLocally(addr string, peer *wire.Server) { s.peers.ServeLocally(addr, peer) }

// fetcher returns the fetcher that replicates from leader, starting it on first use.
// It runs until the server closes: an idle fetcher only waits.
func (s *Server) fetcher(leader int32) *fetcher {
	s.fetchers.Lock()
	defer s.fetchers.Unlock()
	f, ok := s.fetchers.byLeader[leader]
	if !ok {
		f = newFetcher(s, leader)
		s.fetchers.byLeader[leader] = f
		s.goBackground(func() { f.run(s.ctx) })
	}
	return f
}

func (s *Server) openPartitions() map[partitionKey]*replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[partitionKey]*replica, len(s.mu.partitions))
	for k, r := range s.mu.partitions {
		out[k] = r
	}
	return out
}

func (s *Server) assigned(snap *routing.Snapshot, key partitionKey, id routing.TopicID) bool {
	t, ok := snap.Topic(key.topic)
	if !ok || t.ID != id {
		return false
	}
	p, ok := snap.Partition(key.topic, key.index)
	return ok && p.HasReplica(s.cfg.ID)
}

// remove closes a partition and deletes its directory, unless it was opened from
// metadata newer than the snapshot that no longer lists it, or from another
// incarnation of the Store (which lost the topic rather than deleted it).
func (s *Server) remove(key partitionKey, snap *routing.Snapshot) error {
	s.mu.Lock()
	r, ok := s.mu.partitions[key]
	if !ok || r.openedAt > snap.Version || r.incarnation != snap.Incarnation {
		s.mu.Unlock()
		return nil
	}
	delete(s.mu.partitions, key)
	s.mu.Unlock()
	r.stopReplication()
	err := r.log.Close()
	s.logger.Info("removing partition no longer placed on this node", "topic", key.topic, "partition", key.index)
	return errors.Join(err, os.RemoveAll(s.dir(key)))
}

// removeStrayDirs deletes partition directories of topics that no longer exist, such as
// those deleted while this node was down. It holds s.mu so that no request opens a
// partition in a directory while it is being judged stray; open partitions are never
// stray (remove handles those).
func (s *Server) removeStrayDirs(snap *routing.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("node %d: list data dir: %w", s.cfg.ID, err)
	}
	var errs []error
	for _, e := range entries {
		key, ok := parseDirName(e.Name())
		if !e.IsDir() || !ok {
			continue
		}
		if _, open := s.mu.partitions[key]; open {
			continue
		}
		if p, ok := snap.Partition(key.topic, key.index); ok && p.HasReplica(s.cfg.ID) {
			continue
		}
		if s.placedByLostStore(key, snap) {
			continue // placed by a Store that has since lost its data: Republish restores it
		}
		s.logger.Info("removing data of a partition not placed on this node", "dir", e.Name())
		errs = append(errs, os.RemoveAll(filepath.Join(s.cfg.DataDir, e.Name())))
	}
	return errors.Join(errs...)
}

// placedByLostStore reports whether a partition directory's topic was recorded by
// another incarnation of the Store than snap's.
func (s *Server) placedByLostStore(key partitionKey, snap *routing.Snapshot) bool {
	if inc, ok := s.records.incarnationOf(key.topic); ok {
		return inc != snap.Incarnation
	}
	rec, err := readTopicRecord(filepath.Join(s.dir(key), legacyTopicRecordFile))
	return err == nil && rec.Incarnation != snap.Incarnation
}

func (s *Server) dir(key partitionKey) string {
	return filepath.Join(s.cfg.DataDir, fmt.Sprintf("%s-%d", key.topic, key.index))
}

func parseDirName(name string) (partitionKey, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return partitionKey{}, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || n < 0 {
		return partitionKey{}, false
	}
	return partitionKey{name[:i], int32(n)}, true
}

// claimDir makes sure dir holds data of topic id, not of an earlier topic of the same
// name that was deleted and recreated while this node was away.
func claimDir(dir string, id routing.TopicID) error {
	marker := filepath.Join(dir, "partition.metadata")
	want := "version: 0\ntopic_id: " + id.String() + "\n"
	got, err := os.ReadFile(marker)
	switch {
	case err == nil && string(got) == want:
		return nil
	case err == nil:
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove data of an earlier topic in %s: %w", dir, err)
		}
	case !os.IsNotExist(err):
		return fmt.Errorf("read %s: %w", marker, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return os.WriteFile(marker, []byte(want), 0o644)
}

// applyConfig gives a running log the topic's configs when they changed.
func (s *Server) applyConfig(r *replica, t *routing.Topic) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.configVersion == t.ConfigVersion {
		return nil
	}
	if err := r.log.SetConfig(logConfig(t)); err != nil {
		return fmt.Errorf("node %d: apply configs of %s: %w", s.cfg.ID, t.Name, err)
	}
	r.configVersion = t.ConfigVersion
	s.logger.Info("applied topic configs", "topic", t.Name, "config_version", t.ConfigVersion)
	return nil
}

func logConfig(t *routing.Topic) partitionlog.Config {
	return partitionlog.Config{
		SegmentBytes:         t.ConfigInt("segment.bytes"),
		MaxMessageBytes:      int32(t.ConfigInt("max.message.bytes")),
		IndexIntervalBytes:   int32(t.ConfigInt("index.interval.bytes")),
		SegmentMs:            t.ConfigInt("segment.ms"),
		RetentionMs:          nonZero(t.ConfigInt("retention.ms")),
		RetentionBytes:       nonZero(t.ConfigInt("retention.bytes")),
		FlushMessages:        t.ConfigInt("flush.messages"),
		FlushMs:              nonZero(t.ConfigInt("flush.ms")),
		MessageTimestampType: configString(t, "message.timestamp.type"),
	}
}

// nonZero turns a Kafka setting of 0 ("at once") into the smallest positive value,
// since partitionlog reads 0 as "use the default".
func nonZero(v int64) int64 {
	if v == 0 {
		return 1
	}
	return v
}

// msDuration turns a config in milliseconds into a Duration, saturating: Kafka settings
// such as Long.MAX_VALUE overflow a Duration.
func msDuration(ms int64) time.Duration {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}

func configString(t *routing.Topic, name string) string {
	v, _ := t.ConfigValue(name)
	return v
}

// compactConfig is the cleaner's view of a compacted topic's configs.
func compactConfig(t *routing.Topic, highWatermark int64) partitionlog.CompactConfig {
	return partitionlog.CompactConfig{
		DeleteRetention:        max(msDuration(t.ConfigInt("delete.retention.ms")), time.Nanosecond),
		MinCleanableDirtyRatio: max(t.ConfigFloat("min.cleanable.dirty.ratio"), 1e-9),
		MinCompactionLag:       msDuration(t.ConfigInt("min.compaction.lag.ms")),
		MaxCleanableOffset:     highWatermark,
	}
}

// broadcast wakes every waiter at once: long-poll fetches wait for the next append.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next notify.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
