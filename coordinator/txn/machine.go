package txn

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Config holds the coordinator's limits. Zero fields take Kafka's defaults.
type Config struct {
	// MaxTimeout bounds the transaction timeout a producer may ask for
	// (transaction.max.timeout.ms, 15 minutes).
	MaxTimeout time.Duration
	// IDExpiration forgets a transactional id that had no transaction for this long
	// (transactional.id.expiration.ms, 7 days).
	IDExpiration time.Duration
}

func (c *Config) withDefaults() {
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = 15 * time.Minute
	}
	if c.IDExpiration <= 0 {
		c.IDExpiration = 7 * 24 * time.Hour
	}
}

// Result is what the machine decided about a request or a timer. When Write is set, the
// runtime writes its record to __transaction_state, then calls Apply with it and only then
// answers Code (and sends Markers); if the write fails, nothing changed and the client
// gets a retriable error instead.
type Result struct {
	Code       int16
	ProducerID int64
	Epoch      int16
	Write      *Txn
	Markers    *Markers
}

// Markers are the COMMIT or ABORT markers that end a transaction at each of its
// partitions, written by the partitions' leaders (WriteTxnMarkers). When they are all
// written, the runtime calls MarkersWritten.
type Markers struct {
	ID         string
	ProducerID int64
	Epoch      int16
	Commit     bool
	Partitions []TopicPartition
}

// Machine holds the transactions of one __transaction_state partition. It does no I/O and
// reads no clock: time comes with each call. Not safe for concurrent use.
type Machine struct {
	cfg  Config
	txns map[string]*Txn
}

// New returns a machine with no transactions.
func New(cfg Config) *Machine {
	cfg.withDefaults()
	return &Machine{cfg: cfg, txns: map[string]*Txn{}}
}

// Apply installs t once its record is written (or replayed from the log): Dead forgets it.
// A replayed PrepareEpochFence, which Kafka never writes, is taken as the abort it leads to.
func (m *Machine) Apply(t *Txn) {
	if t.State == Dead {
		delete(m.txns, t.ID)
		return
	}
	if t.State == PrepareEpochFence {
		t.State = PrepareAbort
	}
	m.txns[t.ID] = t
}

// Get returns a transactional id's metadata (a copy), if known.
func (m *Machine) Get(id string) (*Txn, bool) {
	t, ok := m.txns[id]
	if !ok {
		return nil, false
	}
	return t.clone(), true
}

// All returns every transaction, sorted by transactional id (copies).
func (m *Machine) All() []*Txn {
	out := make([]*Txn, 0, len(m.txns))
	for _, t := range m.txns {
		out = append(out, t.clone())
	}
	slices.SortFunc(out, func(a, b *Txn) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Prepared returns the markers of every transaction whose markers may not all be written:
// what a coordinator that just loaded the partition sends again.
func (m *Machine) Prepared() []*Markers {
	var out []*Markers
	for _, t := range m.All() {
		if t.State.prepared() {
			out = append(out, markersOf(t))
		}
	}
	return out
}

func markersOf(t *Txn) *Markers {
	return &Markers{ID: t.ID, ProducerID: t.ProducerID, Epoch: t.Epoch, Commit: t.State == PrepareCommit, Partitions: slices.Clone(t.Partitions)}
}

func fail(code int16) Result { return Result{Code: code, ProducerID: -1, Epoch: -1} }

// InitProducerID answers InitProducerId for a transactional id (Kafka's
// handleInitProducerId). reqPID and reqEpoch are the producer's current id and epoch
// (KIP-360, InitProducerId v3+), -1 when it has none. newPID hands out a fresh producer id.
//
//   - an unknown id gets a fresh producer id at epoch 0;
//   - a known one gets its epoch bumped (a new producer id when the epoch would exhaust),
//     which fences every earlier producer of the id; a retry of the last bump (reqPID and
//     reqEpoch what the id held before it) gets the same answer again;
//   - an ongoing transaction is aborted first, its producer fenced: CONCURRENT_TRANSACTIONS
//     until the abort completed, as while markers of a commit or abort are being written.
func (m *Machine) InitProducerID(id string, timeoutMs int32, reqPID int64, reqEpoch int16, now time.Time, newPID func() (int64, error)) Result {
	if timeoutMs <= 0 || time.Duration(timeoutMs)*time.Millisecond > m.cfg.MaxTimeout {
		return fail(kerr.InvalidTransactionTimeout.Code)
	}
	t, ok := m.txns[id]
	if !ok {
		pid, err := newPID()
		if err != nil {
			return fail(kerr.CoordinatorNotAvailable.Code)
		}
		n := &Txn{ID: id, ProducerID: pid, Epoch: 0, PrevProducerID: -1, PrevEpoch: -1, TimeoutMs: timeoutMs, State: Empty, Updated: now}
		return Result{ProducerID: pid, Epoch: 0, Write: n}
	}
	if reqPID >= 0 {
		current := reqPID == t.ProducerID && reqEpoch == t.Epoch
		retried := reqPID == t.PrevProducerID && reqEpoch == t.PrevEpoch
		switch {
		case retried && t.State.finished():
			return Result{ProducerID: t.ProducerID, Epoch: t.Epoch}
		case !current && !retried:
			return fail(kerr.ProducerFenced.Code)
		}
	}
	switch {
	case t.State.prepared() || t.State == PrepareEpochFence:
		return fail(kerr.ConcurrentTransactions.Code)
	case t.State == Ongoing:
		res := m.fence(t, now)
		res.Code, res.ProducerID, res.Epoch = kerr.ConcurrentTransactions.Code, -1, -1
		return res
	}
	n := t.clone()
	if err := n.bump(newPID); err != nil {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	n.State, n.Partitions, n.Start, n.Updated, n.TimeoutMs = Empty, nil, time.Time{}, now, timeoutMs
	return Result{ProducerID: n.ProducerID, Epoch: n.Epoch, Write: n}
}

// bump moves to the next epoch, or to a new producer id at epoch 0 when the epoch is
// exhausted (KIP-360), remembering the previous pair.
func (t *Txn) bump(newPID func() (int64, error)) error {
	t.PrevProducerID, t.PrevEpoch = t.ProducerID, t.Epoch
	if t.Epoch >= math.MaxInt16-1 {
		pid, err := newPID()
		if err != nil {
			return err
		}
		t.ProducerID, t.Epoch = pid, 0
		return nil
	}
	t.Epoch++
	return nil
}

// fence aborts t's ongoing transaction at a bumped epoch, so that its producer can write
// nothing more to it: the abort markers carry the new epoch. Kafka passes through
// PrepareEpochFence on the way; Strait writes the bumped epoch with PrepareAbort at once.
// An exhausted epoch is not bumped (Kafka's rule): the abort still ends the transaction.
func (m *Machine) fence(t *Txn, now time.Time) Result {
	n := t.clone()
	if n.Epoch < math.MaxInt16-1 {
		n.PrevProducerID, n.PrevEpoch = n.ProducerID, n.Epoch
		n.Epoch++
	}
	n.State, n.Updated = PrepareAbort, now
	return Result{ProducerID: n.ProducerID, Epoch: n.Epoch, Write: n, Markers: markersOf(n)}
}

// check applies the producer checks of AddPartitionsToTxn, AddOffsetsToTxn and EndTxn:
// the id must be known and held by pid (INVALID_PRODUCER_ID_MAPPING), at epoch
// (PRODUCER_FENCED otherwise: an older producer of the id).
func (m *Machine) check(id string, pid int64, epoch int16) (*Txn, int16) {
	t, ok := m.txns[id]
	switch {
	case !ok || t.ProducerID != pid:
		return nil, kerr.InvalidProducerIDMapping.Code
	case epoch != t.Epoch:
		return nil, kerr.ProducerFenced.Code
	}
	return t, 0
}

// AddPartitions adds partitions to the producer's transaction, starting one if none is
// open (AddPartitionsToTxn; AddOffsetsToTxn adds the group's __consumer_offsets partition).
// Partitions already in an ongoing transaction need no write. While markers are being
// written the producer must wait: CONCURRENT_TRANSACTIONS.
func (m *Machine) AddPartitions(id string, pid int64, epoch int16, tps []TopicPartition, now time.Time) Result {
	t, code := m.check(id, pid, epoch)
	switch {
	case code != 0:
		return fail(code)
	case t.State.prepared() || t.State == PrepareEpochFence:
		return fail(kerr.ConcurrentTransactions.Code)
	case t.State == Ongoing && !slices.ContainsFunc(tps, func(tp TopicPartition) bool { return !t.has(tp) }):
		return Result{ProducerID: pid, Epoch: epoch}
	}
	n := t.clone()
	if n.State != Ongoing {
		n.Partitions, n.Start = nil, now
	}
	n.State, n.Updated = Ongoing, now
	n.add(tps)
	return Result{ProducerID: pid, Epoch: epoch, Write: n}
}

// Verify answers a partition leader's question of KIP-890 part 1 (AddPartitionsToTxn v4+
// with VerifyOnly): is each partition in the producer's ongoing transaction? Nothing
// changes. Codes per partition: 0, INVALID_TXN_STATE (not in it: the write must not open
// a transaction), or the producer's error for all.
func (m *Machine) Verify(id string, pid int64, epoch int16, tps []TopicPartition) []int16 {
	codes := make([]int16, len(tps))
	t, code := m.check(id, pid, epoch)
	for i, tp := range tps {
		switch {
		case code != 0:
			codes[i] = code
		case t.State != Ongoing || !t.has(tp):
			codes[i] = kerr.InvalidTxnState.Code
		}
	}
	return codes
}

// EndTransaction starts committing or aborting the producer's transaction (EndTxn): the
// Prepare state is written, the producer answered, and the markers sent; MarkersWritten
// completes it. A retry of an end already made is answered as it was (0 once complete,
// CONCURRENT_TRANSACTIONS while its markers are written); the other end is
// INVALID_TXN_STATE, as is ending with no transaction. With bump (EndTxn v5+, KIP-890
// part 2) the epoch moves on at every end, the markers carry the new one, and so does
// the answer; an empty abort then just bumps the epoch.
func (m *Machine) EndTransaction(id string, pid int64, epoch int16, commit, bump bool, now time.Time, newPID func() (int64, error)) Result {
	if t, ok := m.txns[id]; ok && bump && t.PrevProducerID == pid && t.PrevEpoch == epoch {
		return m.retriedEnd(t, commit) // a KIP-890 retry at the epoch before the bump
	}
	t, code := m.check(id, pid, epoch)
	if code != 0 {
		return fail(code)
	}
	switch t.State {
	case Ongoing:
		n := t.clone()
		if bump {
			n.Version = 2
			if err := n.bump(newPID); err != nil {
				return fail(kerr.CoordinatorNotAvailable.Code)
			}
		}
		n.State, n.Updated = PrepareAbort, now
		if commit {
			n.State = PrepareCommit
		}
		return Result{ProducerID: n.ProducerID, Epoch: n.Epoch, Write: n, Markers: markersOf(n)}
	case Empty, CompleteCommit, CompleteAbort:
		if bump && !commit { // nothing to abort: KIP-890 part 2 bumps the epoch all the same
			n := t.clone()
			if err := n.bump(newPID); err != nil {
				return fail(kerr.CoordinatorNotAvailable.Code)
			}
			n.State, n.Version, n.Updated = CompleteAbort, 2, now
			return Result{ProducerID: n.ProducerID, Epoch: n.Epoch, Write: n}
		}
		if t.State == Empty {
			return fail(kerr.InvalidTxnState.Code)
		}
	}
	return m.retriedEnd(t, commit)
}

// retriedEnd answers an EndTxn for a transaction already ending or ended.
func (m *Machine) retriedEnd(t *Txn, commit bool) Result {
	same := commit && (t.State == PrepareCommit || t.State == CompleteCommit) ||
		!commit && (t.State == PrepareAbort || t.State == CompleteAbort)
	switch {
	case !same:
		return fail(kerr.InvalidTxnState.Code)
	case t.State.prepared():
		return fail(kerr.ConcurrentTransactions.Code)
	}
	return Result{ProducerID: t.ProducerID, Epoch: t.Epoch}
}

// MarkersWritten completes a transaction whose markers every partition has written:
// CompleteCommit or CompleteAbort, with no partitions. Markers of a transaction that
// moved on meanwhile (a reloaded coordinator sent them twice) change nothing.
func (m *Machine) MarkersWritten(mk *Markers, now time.Time) Result {
	t, ok := m.txns[mk.ID]
	if !ok || t.ProducerID != mk.ProducerID || t.Epoch != mk.Epoch || !t.State.prepared() {
		return Result{}
	}
	n := t.clone()
	n.State = CompleteAbort
	if t.State == PrepareCommit {
		n.State = CompleteCommit
	}
	n.Partitions, n.Start, n.Updated = nil, time.Time{}, now
	return Result{Write: n}
}

// Tick aborts transactions open past their timeout, fencing their producers as an
// InitProducerId would (Kafka's abortTimedOutTransactions), and forgets transactional ids
// idle past transactional.id.expiration.ms (a Dead tombstone), as Kafka's
// removeExpiredTransactionalIds does.
func (m *Machine) Tick(now time.Time) []Result {
	var out []Result
	for _, t := range m.All() {
		switch {
		case t.State == Ongoing && !now.Before(t.Start.Add(time.Duration(t.TimeoutMs)*time.Millisecond)):
			out = append(out, m.fence(t, now))
		case t.State.finished() && !now.Before(t.Updated.Add(m.cfg.IDExpiration)):
			n := t.clone()
			n.State, n.Updated = Dead, now
			out = append(out, Result{Write: n})
		}
	}
	return out
}

// NextDeadline returns when Tick next has something to do, if ever.
func (m *Machine) NextDeadline() (time.Time, bool) {
	var next time.Time
	for _, t := range m.txns {
		var d time.Time
		switch {
		case t.State == Ongoing:
			d = t.Start.Add(time.Duration(t.TimeoutMs) * time.Millisecond)
		case t.State.finished():
			d = t.Updated.Add(m.cfg.IDExpiration)
		default:
			continue
		}
		if next.IsZero() || d.Before(next) {
			next = d
		}
	}
	return next, !next.IsZero()
}
