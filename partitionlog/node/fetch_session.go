package node

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Incremental fetch sessions (KIP-227). A fetcher that sends SessionEpoch 0 asks the
// node to remember the partitions of its full fetch; the answer carries a session id.
// Its next fetches carry that id and the next epoch, and name only the partitions whose
// fetch position changed (and, under ForgottenTopics, those it no longer wants); the
// node answers only the partitions with something new: records, a moved high watermark
// or log start, or an error. A follower that follows thousands of partitions from one
// leader so sends and receives a few bytes per partition that moved, not per partition
// it follows.
//
//	SessionID  SessionEpoch  meaning
//	0          -1            full fetch, no session (what ordinary consumers send)
//	0 or X     0             full fetch; close X if given, open a new session
//	X          -1            close X; full fetch, no session
//	X          n > 0         incremental fetch in X, which must expect epoch n

// Session cache bounds: Kafka's max.incremental.fetch.session.cache.slots, and how long an
// unused session is kept before a new one may take its place.
const (
	maxFetchSessions    = 1000
	fetchSessionIdleTTL = 2 * time.Minute
)

// fetchSessions is a node's cache of incremental fetch sessions.
type fetchSessions struct {
	mu struct {
		sync.Mutex
		byID map[int32]*fetchSession
	}
}

// fetchSession is what the node remembers of one fetcher: the partitions it fetches, at
// which positions, and what the last answer told it of each. A session serves one
// request at a time (mu), as its epoch orders them.
type fetchSession struct {
	id        int32
	replicaID int32
	closed    chan struct{} // closed when the session is closed or evicted

	// news is where replicas mark the session's partitions that changed (fetch_news.go);
	// wake tells the session's long-polling fetch.
	news struct {
		sync.Mutex
		marked []*sessionPartition
	}
	wake chan struct{}

	mu         sync.Mutex
	epoch      int32 // the epoch the next request must carry
	lastUsed   time.Time
	partitions map[partitionKey]*sessionPartition
	order      []*sessionPartition // the order a rescan looks at the partitions in
	// pending are the partitions a pass looks at: marked since, or with news not yet
	// found answered; rotated so none starves under MaxBytes.
	pending []*sessionPartition
	// routedAt is when the partitions' routes were checked.
	routedAt routesVersion
	// refreshedAt is when every partition's fetch position was last reported to its
	// leader state, unlisted ones included (see reportIdle).
	refreshedAt time.Time
}

// routesVersion is what routes depend on: the metadata, and the replicas open here,
// which Reconcile opens and closes after the metadata changed.
type routesVersion struct{ metadata, reconciled int64 }

// sessionPartition is one partition of a session. Its fields are the session's (guarded
// by session.mu), but for marked, which replicas set.
type sessionPartition struct {
	key     partitionKey
	session *fetchSession
	request kmsg.FetchRequestTopicPartition // the fetcher's latest position and limits
	// What the last answer said, so unchanged partitions can be left out.
	sentHighWatermark int64
	sentLogStart      int64
	sentError         int16
	// route is the open replica this node leads, checked at session.routedAt; routeErr
	// why there is none.
	route    *replica
	routeErr error
	// unreported says the fetcher named a new position the leader state has not seen.
	unreported bool
	// quiet says the partition had no news when its change count was seenChanges, so
	// it has none while the count stays there.
	quiet       bool
	seenChanges uint64
	// watched is the replica this partition watches for news (fetch_news.go).
	watched *replica
	// marked: queued in session.news. pending: in session.pending. forgotten: no
	// longer in the session.
	marked    atomic.Bool
	pending   bool
	forgotten bool
}

func newFetchSessions() *fetchSessions {
	fs := &fetchSessions{}
	fs.mu.byID = make(map[int32]*fetchSession)
	return fs
}

// open closes the session id names, if any, and starts a new one for replicaID. It
// returns nil when the cache is full of sessions in use: the fetch goes on without one.
func (fs *fetchSessions) open(id, replicaID int32, now time.Time) *fetchSession {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.closeLocked(id)
	if len(fs.mu.byID) >= maxFetchSessions && !fs.evictLocked(now) {
		return nil
	}
	sess := &fetchSession{
		replicaID:   replicaID,
		closed:      make(chan struct{}),
		wake:        make(chan struct{}, 1),
		epoch:       0, // the full fetch that opens it; the next one must carry 1
		lastUsed:    now,
		partitions:  make(map[partitionKey]*sessionPartition),
		refreshedAt: now,
	}
	for sess.id == 0 || fs.mu.byID[sess.id] != nil {
		sess.id = rand.Int32N(1<<31-1) + 1
	}
	fs.mu.byID[sess.id] = sess
	return sess
}

// get returns session id, or the top-level error code the fetch is answered with.
func (fs *fetchSessions) get(id int32) (*fetchSession, int16) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	sess, ok := fs.mu.byID[id]
	if !ok {
		return nil, kerr.FetchSessionIDNotFound.Code
	}
	return sess, 0
}

func (fs *fetchSessions) close(id int32) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.closeLocked(id)
}

func (fs *fetchSessions) closeLocked(id int32) {
	if sess, ok := fs.mu.byID[id]; ok {
		delete(fs.mu.byID, id)
		close(sess.closed)
		go sess.unwatchAll() // once its fetch in progress, if any, has seen closed
	}
}

// evictLocked makes room by closing the least recently used session idle for longer
// than fetchSessionIdleTTL; it reports whether it did.
func (fs *fetchSessions) evictLocked(now time.Time) bool {
	var oldest *fetchSession
	var oldestUse time.Time
	for _, sess := range fs.mu.byID {
		if used, busy := sess.lastUse(); !busy && now.Sub(used) > fetchSessionIdleTTL && (oldest == nil || used.Before(oldestUse)) {
			oldest, oldestUse = sess, used
		}
	}
	if oldest == nil {
		return false
	}
	fs.closeLocked(oldest.id)
	return true
}

// lastUse reports when the session last answered, and whether it is answering now.
func (sess *fetchSession) lastUse() (time.Time, bool) {
	if !sess.mu.TryLock() {
		return time.Time{}, true
	}
	defer sess.mu.Unlock()
	return sess.lastUsed, false
}

// update applies a request's partitions, then its forgotten partitions, to the session
// (Kafka's order); the caller holds sess.mu. Listed partitions get their new position
// and must be checked again (their route may be new).
func (sess *fetchSession) update(req *kmsg.FetchRequest) {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			key := partitionKey{rt.Topic, rp.Partition}
			sp, ok := sess.partitions[key]
			if !ok {
				sp = &sessionPartition{key: key, session: sess, sentHighWatermark: -1, sentLogStart: -1}
				sess.partitions[key] = sp
				sess.order = append(sess.order, sp)
			}
			sp.request = rp
			sp.route, sp.routeErr, sp.unreported, sp.quiet = nil, nil, true, false
			sess.pend(sp)
		}
	}
	for _, ft := range req.ForgottenTopics {
		for _, index := range ft.Partitions {
			key := partitionKey{ft.Topic, index}
			if sp, ok := sess.partitions[key]; ok {
				delete(sess.partitions, key)
				sess.removeFromOrder(sp)
				sp.forgotten = true
				sp.unwatch()
			}
		}
	}
}

// nextSessionEpoch follows epoch; epochs wrap to 1, never to 0 or -1, which mean
// "new session" and "no session".
func nextSessionEpoch(epoch int32) int32 {
	if epoch == 1<<31-1 {
		return 1
	}
	return epoch + 1
}

func (sess *fetchSession) removeFromOrder(sp *sessionPartition) {
	if i := slices.Index(sess.order, sp); i >= 0 {
		sess.order = slices.Delete(sess.order, i, i+1)
	}
}

// rotate moves the first n pending partitions to the end, so the next answer starts
// with those that were left out of this one or came last in it.
func (sess *fetchSession) rotate(n int) {
	if n <= 0 || n >= len(sess.pending) {
		return
	}
	sess.pending = append(sess.pending[n:], sess.pending[:n]...)
}
