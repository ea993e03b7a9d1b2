package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
)

// RedisStore keeps the cluster metadata in Redis, so that every proxy and node of a
// cluster shares it. All of one cluster's keys share the prefix strait:{<cluster>}:
// (see redis_scripts.go for the layout); the braces put them in one Redis Cluster hash
// slot, so one Lua script can check and change them atomically, and several Strait
// clusters can share a Redis.
//
// Every change runs as one Lua script that checks its condition, writes, bumps the
// metadata version and publishes it on strait:{<cluster>}:changes.
//
// If Redis loses its data (restarted without persistence, flushed), the next call
// starts a new incarnation: the cluster id this process knew is kept, a new
// incarnation id is drawn, and the version and the producer-id counter restart above
// both the current time in microseconds and anything this process has seen. So
// versions keep growing (caches accept the new, emptier snapshot) and producer ids are
// not handed out twice, unless more than a million changes or ids per second were made
// on average since the previous incarnation began. Incarnation reports the change.
type RedisStore struct {
	client  *redis.Client
	addr    string // host:port, for messages
	keys    []string
	channel string
	logger  *slog.Logger

	// topics holds decoded topics keyed by incarnation, name and revision (the version
	// that last wrote the topic), so a snapshot decodes only the topics that changed.
	// An LRU fits: a topic whose revision changed is never asked for again and ages
	// out, while topics that keep their revision are used by every refresh and stay.
	topics  *lru.Cache[topicRev, *Topic]
	decodes atomic.Int64 // topics decoded from JSON, for tests

	closed   atomic.Bool
	cancel   context.CancelFunc
	pubsub   *redis.PubSub
	loopDone chan struct{}

	mu struct {
		sync.Mutex
		subscribers map[int]chan struct{}
		nextSub     int
		clusterID   string // kept if Redis loses its data
		incarnation string
		maxVersion  int64 // highest version seen, the floor for a new incarnation
		maxPID      int64 // highest producer id handed out, likewise
	}
}

// topicRev identifies one written state of a topic.
type topicRev struct {
	incarnation string
	name        string
	rev         int64
}

// RedisTopicCacheSize bounds the decoded topics a RedisStore keeps: beyond it, the
// least recently used are decoded again when next needed.
const RedisTopicCacheSize = 10_000

// redisConnectTimeout bounds NewRedisStore when Redis does not answer.
const redisConnectTimeout = 3 * time.Second

// NewRedisStore connects to the Redis at url (redis://[:password@]host:port[/db] or
// rediss:// for TLS; query parameters such as dial_timeout are go-redis options) and
// returns the store of the named cluster. It fails within about three seconds, with
// an error wrapping ErrStoreUnavailable, if Redis does not answer.
//
// Unless the URL says otherwise (dial_timeout, max_retries), a dial
// gives up after 2s and is tried twice, and commands are not retried: a script whose
// answer was lost may have run, and only the caller, by re-reading, can tell.
func NewRedisStore(ctx context.Context, rawURL, cluster string, logger *slog.Logger) (*RedisStore, error) {
	if cluster == "" || strings.ContainsAny(cluster, "{}") {
		return nil, fmt.Errorf("routing: Redis store: cluster name %q must be non-empty and contain no braces", cluster)
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("routing: Redis URL %s is not valid (want redis://[:password@]host:port[/db] or rediss://...): %w", redactURL(rawURL), err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 2 * time.Second
	}
	if opts.DialerRetries == 0 {
		opts.DialerRetries = 2 // with the dial timeout, an outage surfaces within ~4s
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = -1
	}
	opts.ContextTimeoutEnabled = true
	prefix := "strait:{" + cluster + "}:"
	s := &RedisStore{
		client:   redis.NewClient(opts),
		addr:     opts.Addr,
		channel:  prefix + "changes",
		logger:   logger.With("redis", opts.Addr, "cluster", cluster),
		loopDone: make(chan struct{}),
	}
	for _, k := range []string{"meta", "topics", "topic_revs", "nodes", "proxies", "leases", "acls", "scram"} {
		s.keys = append(s.keys, prefix+k)
	}
	s.topics, _ = lru.New[topicRev, *Topic](RedisTopicCacheSize) // fails only for size <= 0
	s.mu.subscribers = make(map[int]chan struct{})

	pingCtx, cancel := context.WithTimeout(ctx, redisConnectTimeout)
	defer cancel()
	if err := s.client.Ping(pingCtx).Err(); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("routing: connect to Redis at %s: %w", redactURL(rawURL), wrapRedisErr("ping", s.addr, err))
	}
	if _, err := s.meta(pingCtx); err != nil {
		s.client.Close()
		return nil, err
	}
	loopCtx, stop := context.WithCancel(context.Background())
	s.cancel = stop
	s.pubsub = s.client.Subscribe(loopCtx, s.channel)
	go s.watch(loopCtx)
	return s, nil
}

// redactURL returns the URL without its password, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Incarnation returns the id of the Redis data this store last saw. It changes when
// Redis has lost its data and the store started a new incarnation.
func (s *RedisStore) Incarnation() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.incarnation
}

// run executes a script with the shared keys and preamble arguments.
func (s *RedisStore) run(ctx context.Context, op string, script *redis.Script, args ...any) (any, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("routing: %s: %w", op, ErrClosed)
	}
	res, err := script.Run(ctx, s.client, s.keys, append(s.seedArgs(), args...)...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrapRedisErr(op, s.addr, err)
	}
	return res, nil
}

// seedArgs returns the preamble arguments that start a new incarnation if Redis has none.
func (s *RedisStore) seedArgs() []any {
	floor := time.Now().UnixMicro()
	s.mu.Lock()
	defer s.mu.Unlock()
	clusterID := s.mu.clusterID
	if clusterID == "" {
		clusterID = newClusterID()
	}
	return []any{newClusterID(), clusterID, max(floor, s.mu.maxVersion+1), max(floor, s.mu.maxPID), s.channel}
}

// observe records the metadata a script returned; it reports a new incarnation.
func (s *RedisStore) observe(version int64, clusterID, incarnation string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.maxVersion = max(s.mu.maxVersion, version)
	if clusterID != "" {
		s.mu.clusterID = clusterID
	}
	if incarnation == "" || incarnation == s.mu.incarnation {
		return
	}
	if s.mu.incarnation != "" {
		s.logger.Warn("Redis lost the cluster metadata (restarted without persistence or flushed?); started a new incarnation: nodes and proxies must register again and topics be recreated",
			"old_incarnation", s.mu.incarnation, "incarnation", incarnation, "version", version, "cluster_id", clusterID)
	}
	s.mu.incarnation = incarnation
}

func (s *RedisStore) observeVersion(version int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.maxVersion = max(s.mu.maxVersion, version)
}

// meta reads (and if need be creates) the version, cluster id and incarnation.
func (s *RedisStore) meta(ctx context.Context) (version int64, err error) {
	res, err := s.run(ctx, "read metadata version", scriptMeta)
	if err != nil {
		return 0, err
	}
	r := replyOf(res)
	version = r.int(0)
	s.observe(version, r.str(1), r.str(2))
	return version, r.err("read metadata version", s.addr)
}

// Snapshot implements Store. It returns one version's view: the topics are fetched in
// a second script only if the version has not moved since the first.
func (s *RedisStore) Snapshot(ctx context.Context) (*Snapshot, error) {
	const op = "read metadata"
	for attempt := 0; ; attempt++ {
		full := attempt >= 3 // the version keeps moving: read everything at once
		mode := ""
		if full {
			mode = "full"
		}
		res, err := s.run(ctx, op, scriptSnapshot, mode)
		if err != nil {
			return nil, err
		}
		r := replyOf(res)
		version, clusterID, inc := r.int(0), r.str(1), r.str(2)
		revs, nodes, proxies, leases, acls := r.pairs(3), r.pairs(4), r.pairs(5), r.pairs(6), r.strs(7)
		if err := r.err(op, s.addr); err != nil {
			return nil, err
		}
		s.observe(version, clusterID, inc)
		topics := make([]*Topic, 0, len(revs))
		var missing []topicRev
		for _, kv := range revs {
			rev, err := strconv.ParseInt(kv[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("routing: %s: revision of topic %q in Redis at %s is %q, not a number", op, kv[0], s.addr, kv[1])
			}
			key := topicRev{inc, kv[0], rev}
			if t, ok := s.topics.Get(key); ok {
				topics = append(topics, t)
			} else {
				missing = append(missing, key)
			}
		}
		bodies, ok, err := s.topicBodies(ctx, r, full, version, inc, missing)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		for i, key := range missing {
			t, err := s.decodeTopic(key, bodies[i])
			if err != nil {
				return nil, err
			}
			topics = append(topics, t)
		}
		snap, err := s.buildSnapshot(version, clusterID, topics, nodes, proxies, leases)
		if err != nil {
			return nil, err
		}
		if snap.ACLs, err = s.decodeACLs(acls); err != nil {
			return nil, err
		}
		return snap, nil
	}
}

// topicBodies returns the JSON of the missing topics: from the full reply, or read
// again if the version is still the snapshot's (ok is false if it moved).
func (s *RedisStore) topicBodies(ctx context.Context, r reply, full bool, version int64, inc string, missing []topicRev) (bodies []string, ok bool, err error) {
	const op = "read topics"
	if len(missing) == 0 {
		return nil, true, nil
	}
	if full {
		all := map[string]string{}
		for _, kv := range r.pairs(8) {
			all[kv[0]] = kv[1]
		}
		for _, key := range missing {
			bodies = append(bodies, all[key.name])
		}
		return bodies, true, r.err(op, s.addr)
	}
	args := []any{strconv.FormatInt(version, 10), inc}
	for _, key := range missing {
		args = append(args, key.name)
	}
	res, err := s.run(ctx, op, scriptTopicBodies, args...)
	if err != nil || res == nil {
		return nil, false, err
	}
	got := replyOf(res)
	for i := range missing {
		bodies = append(bodies, got.str(i))
	}
	return bodies, true, got.err(op, s.addr)
}

func (s *RedisStore) decodeTopic(key topicRev, body string) (*Topic, error) {
	var t Topic
	if err := json.Unmarshal([]byte(body), &t); err != nil {
		return nil, fmt.Errorf("routing: topic %q in Redis at %s is not valid JSON (delete and recreate the topic): %w", key.name, s.addr, err)
	}
	s.decodes.Add(1)
	s.topics.Add(key, &t)
	return &t, nil
}

func (s *RedisStore) buildSnapshot(version int64, clusterID string, topics []*Topic, nodePairs, proxyPairs, leasePairs [][2]string) (*Snapshot, error) {
	nodes := make([]Node, 0, len(nodePairs))
	for _, kv := range nodePairs {
		var n Node
		if err := json.Unmarshal([]byte(kv[1]), &n); err != nil {
			return nil, fmt.Errorf("routing: node %s in Redis at %s is not valid JSON (the node registers again when restarted): %w", kv[0], s.addr, err)
		}
		nodes = append(nodes, n)
	}
	snap := newSnapshot(version, clusterID, topics, nodes)
	snap.Incarnation = s.Incarnation()
	snap.Proxies = make(map[int32]Proxy, len(proxyPairs))
	for _, kv := range proxyPairs {
		var p Proxy
		if err := json.Unmarshal([]byte(kv[1]), &p); err != nil {
			return nil, fmt.Errorf("routing: proxy %s in Redis at %s is not valid JSON (the proxy registers again when restarted): %w", kv[0], s.addr, err)
		}
		snap.Proxies[p.ID] = p
	}
	snap.Leases = make(map[string]Lease, len(leasePairs))
	for _, kv := range leasePairs {
		l, err := parseLease(kv[1])
		if err != nil {
			return nil, fmt.Errorf("routing: lease %q in Redis at %s: %w", kv[0], s.addr, err)
		}
		snap.Leases[kv[0]] = l
	}
	return snap, nil
}

// parseLease reads "token|expires_unix_ms|holder".
func parseLease(v string) (Lease, error) {
	tok, rest, ok1 := strings.Cut(v, "|")
	exp, holder, ok2 := strings.Cut(rest, "|")
	token, err1 := strconv.ParseInt(tok, 10, 64)
	ms, err2 := strconv.ParseInt(exp, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return Lease{}, fmt.Errorf("%q is not token|expires_ms|holder", v)
	}
	return Lease{Holder: holder, Token: token, ExpiresAt: time.UnixMilli(ms)}, nil
}

// Subscribe implements Store. Wake-ups come from Redis pub/sub, plus one after every
// reconnection, since messages published meanwhile are lost.
func (s *RedisStore) Subscribe() (<-chan struct{}, func()) {
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

func (s *RedisStore) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.mu.subscribers {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending; it will read the latest state
		}
	}
}

// CreateTopic implements Store.
func (s *RedisStore) CreateTopic(ctx context.Context, t Topic) error {
	op := fmt.Sprintf("create topic %q", t.Name)
	body, err := json.Marshal(t.clone())
	if err != nil {
		return fmt.Errorf("routing: %s: %w", op, err)
	}
	res, err := s.run(ctx, op, scriptCreateTopic, t.Name, body)
	if err != nil {
		return err
	}
	return s.outcome(op, res, map[string]error{"exists": ErrTopicExists})
}

// DeleteTopic implements Store.
func (s *RedisStore) DeleteTopic(ctx context.Context, name string) error {
	op := fmt.Sprintf("delete topic %q", name)
	res, err := s.run(ctx, op, scriptDeleteTopic, name)
	if err != nil {
		return err
	}
	return s.outcome(op, res, map[string]error{"unknown": ErrUnknownTopic})
}

// AddPartitions implements Store.
func (s *RedisStore) AddPartitions(ctx context.Context, topic string, expectCount int, parts []Partition) error {
	return s.updateTopic(ctx, fmt.Sprintf("add partitions to %q", topic), topic, func(t *Topic) error {
		if len(t.Partitions) != expectCount {
			return fmt.Errorf("it has %d, not %d: %w", len(t.Partitions), expectCount, ErrConflict)
		}
		for _, p := range parts {
			t.Partitions = append(t.Partitions, p.clone())
		}
		return nil
	})
}

// SetTopicConfigs implements Store.
func (s *RedisStore) SetTopicConfigs(ctx context.Context, topic string, configs map[string]string, expectVersion int64) error {
	return s.updateTopic(ctx, fmt.Sprintf("set configs of %q", topic), topic, func(t *Topic) error {
		if t.ConfigVersion != expectVersion {
			return fmt.Errorf("config version is %d, not %d: %w", t.ConfigVersion, expectVersion, ErrConflict)
		}
		t.Configs = maps.Clone(configs)
		t.ConfigVersion++
		return nil
	})
}

// updateTopic reads a topic, applies fn (which checks the caller's condition) and
// writes it back if nobody wrote it meanwhile; if somebody did, it starts over, so fn
// always judges the latest state.
func (s *RedisStore) updateTopic(ctx context.Context, op, name string, fn func(*Topic) error) error {
	for {
		res, err := s.run(ctx, op, scriptReadTopic, name)
		if err != nil {
			return err
		}
		r := replyOf(res)
		body, rev := r.str(0), r.str(1)
		if err := r.err(op, s.addr); err != nil {
			return err
		}
		if rev == "" {
			return fmt.Errorf("routing: %s: %w", op, ErrUnknownTopic)
		}
		var t Topic
		if err := json.Unmarshal([]byte(body), &t); err != nil {
			return fmt.Errorf("routing: %s: stored topic is not valid JSON (delete and recreate it): %w", op, err)
		}
		if err := fn(&t); err != nil {
			return fmt.Errorf("routing: %s: %w", op, err)
		}
		next, err := json.Marshal(&t)
		if err != nil {
			return fmt.Errorf("routing: %s: %w", op, err)
		}
		res, err = s.run(ctx, op, scriptPutTopic, name, rev, next)
		if err != nil {
			return err
		}
		if r := replyOf(res); r.str(0) == "moved" {
			continue
		}
		return s.outcome(op, res, map[string]error{"unknown": ErrUnknownTopic})
	}
}

// UpdatePartition implements Store.
func (s *RedisStore) UpdatePartition(ctx context.Context, topic string, p Partition, expectPartitionEpoch int32) error {
	return updateOne(ctx, s, topic, p, expectPartitionEpoch)
}

// UpdatePartitions implements Store. It reads the topics concerned, judges the
// changes here, and writes the changed topics back in one script that checks none of
// them was written meanwhile (their revisions); if one was, it starts over, so the
// changes are always judged against the latest state, as updateTopic does for one.
func (s *RedisStore) UpdatePartitions(ctx context.Context, changes []PartitionChange) ([]error, error) {
	const op = "update partitions"
	if len(changes) == 0 {
		return nil, nil
	}
	var names []string
	for _, ch := range changes {
		if !slices.Contains(names, ch.Topic) {
			names = append(names, ch.Topic)
		}
	}
	for {
		topics, revs, err := s.readTopics(ctx, op, names)
		if err != nil {
			return nil, err
		}
		results, touched := applyPartitionChanges(changes, func(name string) (*Topic, bool) {
			t, ok := topics[name]
			return t, ok
		})
		if len(touched) == 0 {
			return results, nil
		}
		args := make([]any, 0, 3*len(touched))
		for _, name := range touched {
			body, err := json.Marshal(topics[name])
			if err != nil {
				return nil, fmt.Errorf("routing: %s: %w", op, err)
			}
			args = append(args, name, revs[name], body)
		}
		res, err := s.run(ctx, op, scriptPutTopics, args...)
		if err != nil {
			return nil, err
		}
		if r := replyOf(res); r.str(0) == "moved" {
			continue
		}
		if err := s.outcome(op, res, nil); err != nil {
			return nil, err
		}
		return results, nil
	}
}

// readTopics reads and decodes the named topics with their revisions; a missing topic
// is absent from both maps.
func (s *RedisStore) readTopics(ctx context.Context, op string, names []string) (map[string]*Topic, map[string]string, error) {
	args := make([]any, len(names))
	for i, name := range names {
		args[i] = name
	}
	res, err := s.run(ctx, op, scriptReadTopics, args...)
	if err != nil {
		return nil, nil, err
	}
	r := replyOf(res)
	topics, revs := make(map[string]*Topic, len(names)), make(map[string]string, len(names))
	for i, name := range names {
		body, rev := r.str(2*i), r.str(2*i+1)
		if rev == "" {
			continue
		}
		var t Topic
		if err := json.Unmarshal([]byte(body), &t); err != nil {
			return nil, nil, fmt.Errorf("routing: %s: stored topic %q is not valid JSON (delete and recreate it): %w", op, name, err)
		}
		topics[name], revs[name] = &t, rev
	}
	return topics, revs, r.err(op, s.addr)
}

// RegisterNode implements Store.
func (s *RedisStore) RegisterNode(ctx context.Context, n Node) error {
	return s.register(ctx, fmt.Sprintf("register node %d", n.ID), 4, n.ID, n)
}

// RegisterProxy implements Store.
func (s *RedisStore) RegisterProxy(ctx context.Context, p Proxy) error {
	return s.register(ctx, fmt.Sprintf("register proxy %d", p.ID), 5, p.ID, p)
}

func (s *RedisStore) register(ctx context.Context, op string, key int, id int32, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("routing: %s: %w", op, err)
	}
	res, err := s.run(ctx, op, scriptRegister, key, id, body)
	if err != nil {
		return err
	}
	return s.outcome(op, res, nil)
}

// AcquireLease implements Store. Expiry follows the Redis server's clock. A renewal
// by the holder changes only the expiry, so it neither bumps the version nor notifies.
func (s *RedisStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	op := fmt.Sprintf("acquire lease %q for %q", name, holder)
	res, err := s.run(ctx, op, scriptAcquireLease, name, holder, max(ttl.Milliseconds(), 1))
	if err != nil {
		return Lease{}, err
	}
	r := replyOf(res)
	status, a, exp := r.str(0), r.str(1), r.int(2)
	if err := r.err(op, s.addr); err != nil {
		return Lease{}, err
	}
	if status == "held" {
		return Lease{}, fmt.Errorf("routing: lease %q: held by %q until %s: %w", name, a, time.UnixMilli(exp).Format(time.RFC3339), ErrLeaseHeld)
	}
	if status == "ok" {
		s.observeVersion(r.int(3))
	}
	token, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return Lease{}, fmt.Errorf("routing: %s: Redis at %s answered %v", op, s.addr, res)
	}
	return Lease{Holder: holder, Token: token, ExpiresAt: time.UnixMilli(exp)}, nil
}

// ReleaseLease implements Store. The lease expires now by the Redis server's clock.
func (s *RedisStore) ReleaseLease(ctx context.Context, name, holder string) error {
	op := fmt.Sprintf("release lease %q of %q", name, holder)
	res, err := s.run(ctx, op, scriptReleaseLease, name, holder)
	if err != nil {
		return err
	}
	r := replyOf(res)
	status := r.str(0)
	if err := r.err(op, s.addr); err != nil {
		return err
	}
	if status == "ok" {
		s.observeVersion(r.int(1))
	}
	return nil
}

// AllocateProducerIDs implements Store. It does not bump the metadata version: the
// counter is not part of a Snapshot, so caches have nothing to reload.
func (s *RedisStore) AllocateProducerIDs(ctx context.Context, count int64) (int64, error) {
	op := fmt.Sprintf("allocate %d producer ids", count)
	if count <= 0 {
		return 0, fmt.Errorf("routing: %s: count must be positive", op)
	}
	res, err := s.run(ctx, op, scriptAllocatePIDs, count)
	if err != nil {
		return 0, err
	}
	first, ok := res.(int64)
	if !ok {
		return 0, fmt.Errorf("routing: %s: Redis at %s answered %v, not a number", op, s.addr, res)
	}
	s.mu.Lock()
	s.mu.maxPID = max(s.mu.maxPID, first+count)
	s.mu.Unlock()
	return first, nil
}

// decodeACLs reads the ACL bindings stored as hash fields.
func (s *RedisStore) decodeACLs(keys []string) ([]ACL, error) {
	acls := make([]ACL, 0, len(keys))
	for _, k := range keys {
		var a ACL
		if err := json.Unmarshal([]byte(k), &a); err != nil {
			return nil, fmt.Errorf("routing: ACL %q in Redis at %s is not valid JSON (delete it with DeleteAcls or from Redis): %w", k, s.addr, err)
		}
		acls = append(acls, a)
	}
	return sortACLs(acls), nil
}

// CreateACLs implements Store.
func (s *RedisStore) CreateACLs(ctx context.Context, acls []ACL) error {
	const op = "create ACLs"
	if len(acls) == 0 {
		return nil
	}
	res, err := s.run(ctx, op, scriptCreateACLs, aclArgs(acls)...)
	if err != nil {
		return err
	}
	return s.outcome(op, res, nil)
}

// DeleteACLs implements Store.
func (s *RedisStore) DeleteACLs(ctx context.Context, acls []ACL) ([]ACL, error) {
	const op = "delete ACLs"
	if len(acls) == 0 {
		return nil, nil
	}
	res, err := s.run(ctx, op, scriptDeleteACLs, aclArgs(acls)...)
	if err != nil {
		return nil, err
	}
	if err := s.outcome(op, res, nil); err != nil {
		return nil, err
	}
	r := replyOf(res)
	keys := r.strs(2)
	if err := r.err(op, s.addr); err != nil {
		return nil, err
	}
	return s.decodeACLs(keys)
}

func aclArgs(acls []ACL) []any {
	args := make([]any, len(acls))
	for i, a := range acls {
		args[i] = a.key()
	}
	return args
}

// PutScramCredential implements Store.
func (s *RedisStore) PutScramCredential(ctx context.Context, c ScramCredential) error {
	op := fmt.Sprintf("store the %s credential of %q", c.Mechanism, c.User)
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("routing: %s: %w", op, err)
	}
	res, err := s.run(ctx, op, scriptPutScram, scramKey(c.User, c.Mechanism), body)
	if err != nil {
		return err
	}
	return s.outcome(op, res, nil)
}

// DeleteScramCredential implements Store.
func (s *RedisStore) DeleteScramCredential(ctx context.Context, user, mechanism string) error {
	op := fmt.Sprintf("delete the %s credential of %q", mechanism, user)
	res, err := s.run(ctx, op, scriptDeleteScram, scramKey(user, mechanism))
	if err != nil {
		return err
	}
	return s.outcome(op, res, map[string]error{"unknown": ErrUnknownCredential})
}

// ScramCredential implements Store.
func (s *RedisStore) ScramCredential(ctx context.Context, user, mechanism string) (ScramCredential, bool, error) {
	op := fmt.Sprintf("read the %s credential of %q", mechanism, user)
	res, err := s.run(ctx, op, scriptGetScram, scramKey(user, mechanism))
	if err != nil || res == nil {
		return ScramCredential{}, false, err
	}
	body, ok := res.(string)
	if !ok {
		return ScramCredential{}, false, fmt.Errorf("routing: %s: Redis at %s answered %T, not a string", op, s.addr, res)
	}
	c, err := s.decodeScram(body)
	return c, err == nil, err
}

// ScramCredentials implements Store.
func (s *RedisStore) ScramCredentials(ctx context.Context) ([]ScramCredential, error) {
	const op = "read SCRAM credentials"
	res, err := s.run(ctx, op, scriptAllScram)
	if err != nil {
		return nil, err
	}
	r := reply{}
	r.items = []any{res}
	bodies := r.strs(0)
	if err := r.err(op, s.addr); err != nil {
		return nil, err
	}
	creds := make([]ScramCredential, 0, len(bodies))
	for _, b := range bodies {
		c, err := s.decodeScram(b)
		if err != nil {
			return nil, err
		}
		creds = append(creds, c)
	}
	return sortScram(creds), nil
}

func (s *RedisStore) decodeScram(body string) (ScramCredential, error) {
	var c ScramCredential
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return c, fmt.Errorf("routing: a SCRAM credential in Redis at %s is not valid JSON (set the user's password again): %w", s.addr, err)
	}
	return c, nil
}

// Close implements Store: it ends subscriptions and closes the connections.
func (s *RedisStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	_ = s.pubsub.Close()
	<-s.loopDone
	return s.client.Close()
}

// outcome maps a script's status reply to nil or a sentinel error.
func (s *RedisStore) outcome(op string, res any, sentinels map[string]error) error {
	r := replyOf(res)
	status := r.str(0)
	if err := r.err(op, s.addr); err != nil {
		return err
	}
	if status == "ok" {
		s.observeVersion(r.int(1))
		return nil
	}
	if err, ok := sentinels[status]; ok {
		return fmt.Errorf("routing: %s: %w", op, err)
	}
	return fmt.Errorf("routing: %s: Redis at %s answered %v", op, s.addr, res)
}

var _ Store = (*RedisStore)(nil)
