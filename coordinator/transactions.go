package coordinator

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator/offsets"
	"github.com/strait-io/strait/coordinator/txn"
)

// TransactionTopic is the internal topic that holds transactions' state.
const TransactionTopic = "__transaction_state"

// The transaction coordinator's runtime: as the group coordinator does for groups, it
// loads the __transaction_state partitions this proxy holds leases on, one goroutine per
// partition owning a txn.Machine, replays their records, and serves the transaction APIs
// for the transactional ids that hash onto them (abs(hash(id)) % partitions, as Kafka).
//
//	request ──▶ Transactions ──partition(id)──▶ txnShard loop ──▶ txn.Machine (no I/O)
//	                                                │
//	                                                ├──▶ log.Append (acks=all), then reply
//	                                                └──▶ MarkerWriter (per transaction, retried) ──▶ MarkersWritten
//
// Every state change is written before the client hears of it. Markers are sent off the
// loop and retried until every partition wrote them; a coordinator that takes the
// partition over sends the prepared transactions' markers again.

// MarkerWriter writes one transaction's markers to each of its partitions (the data
// partitions' leaders, and the group coordinators of its __consumer_offsets partitions),
// returning nil once all are written. coordinatorEpoch fences markers of a coordinator
// that lost the partition.
type MarkerWriter interface {
	WriteMarkers(ctx context.Context, m *txn.Markers, coordinatorEpoch int32) error
}

// TransactionsConfig configures the transaction coordinator.
type TransactionsConfig struct {
	Partitions int32 // __transaction_state partitions (transaction.state.log.num.partitions)
	Machine    txn.Config
	// ProducerIDs hands out fresh producer ids (the proxy's blocks from the Store).
	ProducerIDs func(ctx context.Context) (int64, error)
	// AbortCheckInterval is how often timeouts and expirations are checked
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 seconds).
	AbortCheckInterval time.Duration
}

// Transactions owns the transactions of the __transaction_state partitions it has loaded.
type Transactions struct {
	cfg     TransactionsConfig
	log     OffsetsLog
	markers MarkerWriter
	logger  *slog.Logger

	mu struct {
		sync.Mutex
		shards map[int32]*txnShard
	}
}

// NewTransactions returns a transaction coordinator with no partitions loaded.
func NewTransactions(cfg TransactionsConfig, log OffsetsLog, markers MarkerWriter, logger *slog.Logger) (*Transactions, error) {
	if cfg.Partitions <= 0 {
		return nil, fmt.Errorf("coordinator: transaction state partitions %d: must be positive", cfg.Partitions)
	}
	if cfg.ProducerIDs == nil {
		return nil, fmt.Errorf("coordinator: transactions need a producer id source")
	}
	if cfg.AbortCheckInterval <= 0 {
		cfg.AbortCheckInterval = 10 * time.Second
	}
	t := &Transactions{cfg: cfg, log: log, markers: markers, logger: logger}
	t.mu.shards = map[int32]*txnShard{}
	return t, nil
}

// Partition returns the __transaction_state partition that holds a transactional id.
func (t *Transactions) Partition(id string) int32 { return offsets.Partition(id, t.cfg.Partitions) }

// Partitions is the number of __transaction_state partitions.
func (t *Transactions) Partitions() int32 { return t.cfg.Partitions }

// Load starts coordinating a partition at coordinator epoch epoch (the lease's token): it
// replays the partition in the background, then sends the prepared transactions' markers.
func (t *Transactions) Load(partition int32, epoch int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mu.shards[partition]; ok {
		return
	}
	s := &txnShard{t: t, index: partition, epoch: epoch, m: txn.New(t.cfg.Machine), inbox: make(chan func(), 64),
		stop: make(chan struct{}), done: make(chan struct{})}
	t.mu.shards[partition] = s
	go s.run()
}

// Unload stops coordinating a partition.
func (t *Transactions) Unload(partition int32) {
	t.mu.Lock()
	s, ok := t.mu.shards[partition]
	delete(t.mu.shards, partition)
	t.mu.Unlock()
	if ok {
		s.close()
	}
}

// Loaded reports whether every loaded partition has finished replaying.
func (t *Transactions) Loaded() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p, s := range t.mu.shards {
		if !s.loaded.Load() {
			return fmt.Errorf("%s partition %d is still loading", TransactionTopic, p)
		}
	}
	return nil
}

// Close stops every partition.
func (t *Transactions) Close() {
	t.mu.Lock()
	shards := t.mu.shards
	t.mu.shards = map[int32]*txnShard{}
	t.mu.Unlock()
	for _, s := range shards {
		s.close()
	}
}

// shardOf returns the loaded shard of a transactional id, or the error code to answer.
func (t *Transactions) shardOf(id string) (*txnShard, int16) {
	t.mu.Lock()
	s, ok := t.mu.shards[t.Partition(id)]
	t.mu.Unlock()
	switch {
	case !ok:
		return nil, kerr.NotCoordinator.Code
	case !s.loaded.Load():
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return s, 0
}

// TxnResult is a transaction API's answer.
type TxnResult struct {
	Code       int16
	ProducerID int64
	Epoch      int16
}

// call runs decide on the id's shard and carries out its result.
func (t *Transactions) call(ctx context.Context, id string, decide func(s *txnShard) txn.Result) TxnResult {
	s, code := t.shardOf(id)
	if code != 0 {
		return TxnResult{Code: code, ProducerID: -1, Epoch: -1}
	}
	ch := make(chan TxnResult, 1)
	fn := func() {
		res := s.carryOut(decide(s))
		ch <- TxnResult{Code: res.Code, ProducerID: res.ProducerID, Epoch: res.Epoch}
	}
	select {
	case s.inbox <- fn:
	case <-s.done:
		return TxnResult{Code: kerr.NotCoordinator.Code, ProducerID: -1, Epoch: -1}
	case <-ctx.Done():
		return TxnResult{Code: kerr.RequestTimedOut.Code, ProducerID: -1, Epoch: -1}
	}
	select {
	case r := <-ch:
		return r
	case <-s.done:
		return TxnResult{Code: kerr.NotCoordinator.Code, ProducerID: -1, Epoch: -1}
	case <-ctx.Done():
		return TxnResult{Code: kerr.RequestTimedOut.Code, ProducerID: -1, Epoch: -1}
	}
}

// InitProducerID answers InitProducerId for a transactional id.
func (t *Transactions) InitProducerID(ctx context.Context, id string, timeoutMs int32, pid int64, epoch int16) TxnResult {
	return t.call(ctx, id, func(s *txnShard) txn.Result {
		return s.m.InitProducerID(id, timeoutMs, pid, epoch, time.Now(), s.newPID)
	})
}

// AddPartitions adds partitions to a producer's transaction.
func (t *Transactions) AddPartitions(ctx context.Context, id string, pid int64, epoch int16, tps []txn.TopicPartition) TxnResult {
	return t.call(ctx, id, func(s *txnShard) txn.Result {
		return s.m.AddPartitions(id, pid, epoch, tps, time.Now())
	})
}

// AddOffsets adds a group's __consumer_offsets partition to a producer's transaction.
func (t *Transactions) AddOffsets(ctx context.Context, id string, pid int64, epoch int16, group string, offsetsPartitions int32) TxnResult {
	tp := txn.TopicPartition{Topic: OffsetsTopic, Partition: offsets.Partition(group, offsetsPartitions)}
	return t.AddPartitions(ctx, id, pid, epoch, []txn.TopicPartition{tp})
}

// EndTxn commits or aborts a producer's transaction; bump is EndTxn v5+ (KIP-890 part 2).
func (t *Transactions) EndTxn(ctx context.Context, id string, pid int64, epoch int16, commit, bump bool) TxnResult {
	return t.call(ctx, id, func(s *txnShard) txn.Result {
		return s.m.EndTransaction(id, pid, epoch, commit, bump, time.Now(), s.newPID)
	})
}

// Verify answers a partition leader's KIP-890 verification: a code per partition.
func (t *Transactions) Verify(ctx context.Context, id string, pid int64, epoch int16, tps []txn.TopicPartition) []int16 {
	codes := make([]int16, len(tps))
	s, code := t.shardOf(id)
	if code == 0 {
		got, err := ask(ctx, s, func() []int16 { return s.m.Verify(id, pid, epoch, tps) })
		if err == nil {
			return got
		}
		code = kerr.NotCoordinator.Code
	}
	for i := range codes {
		codes[i] = code
	}
	return codes
}

// Describe returns a transactional id's state, or a code: NOT_COORDINATOR, or
// TRANSACTIONAL_ID_NOT_FOUND.
func (t *Transactions) Describe(ctx context.Context, id string) (*txn.Txn, int16) {
	s, code := t.shardOf(id)
	if code != 0 {
		return nil, code
	}
	got, err := ask(ctx, s, func() *txn.Txn {
		tx, _ := s.m.Get(id)
		return tx
	})
	switch {
	case err != nil:
		return nil, kerr.NotCoordinator.Code
	case got == nil:
		return nil, kerr.TransactionalIDNotFound.Code
	}
	return got, 0
}

// List returns every transaction of the loaded partitions.
func (t *Transactions) List(ctx context.Context) []*txn.Txn {
	t.mu.Lock()
	shards := make([]*txnShard, 0, len(t.mu.shards))
	for _, s := range t.mu.shards {
		shards = append(shards, s)
	}
	t.mu.Unlock()
	sort.Slice(shards, func(i, j int) bool { return shards[i].index < shards[j].index })
	var out []*txn.Txn
	for _, s := range shards {
		if !s.loaded.Load() {
			continue
		}
		if got, err := ask(ctx, s, s.m.All); err == nil {
			out = append(out, got...)
		}
	}
	return out
}

// ask runs a read on the shard's goroutine.
func ask[T any](ctx context.Context, s *txnShard, fn func() T) (T, error) {
	ch := make(chan T, 1)
	var zero T
	select {
	case s.inbox <- func() { ch <- fn() }:
	case <-s.done:
		return zero, errNotCoordinator
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case v := <-ch:
		return v, nil
	case <-s.done:
		return zero, errNotCoordinator
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// txnShard is one loaded __transaction_state partition, owned by the goroutine in run.
type txnShard struct {
	t      *Transactions
	index  int32
	epoch  int32 // coordinator epoch: the lease's token
	m      *txn.Machine
	inbox  chan func()
	stop   chan struct{}
	done   chan struct{}
	loaded atomic.Bool
	// sending counts marker writers in flight, which close waits for.
	sending sync.WaitGroup
}

func (s *txnShard) close() {
	close(s.stop)
	<-s.done
	s.sending.Wait()
}

func (s *txnShard) run() {
	defer close(s.done)
	if !s.load() {
		return
	}
	s.loaded.Store(true)
	for _, mk := range s.m.Prepared() {
		s.t.logger.Info("finishing a transaction its previous coordinator prepared: writing its markers again",
			"partition", s.index, "transactional_id", mk.ID, "producer_id", mk.ProducerID, "commit", mk.Commit, "partitions", len(mk.Partitions))
		s.sendMarkers(mk)
	}
	ticker := time.NewTicker(s.t.cfg.AbortCheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case fn := <-s.inbox:
			s.safely(fn)
		case now := <-ticker.C:
			for _, res := range s.m.Tick(now) {
				s.carryOut(res)
			}
		}
	}
}

func (s *txnShard) safely(fn func()) {
	defer func() {
		if p := recover(); p != nil {
			s.t.logger.Error("transaction coordinator event panicked; its request gets no answer", "partition", s.index, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	fn()
}

func (s *txnShard) newPID() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.t.cfg.ProducerIDs(ctx)
}

// carryOut writes res's record, installs it and sends its markers; a failed write turns
// the answer into COORDINATOR_NOT_AVAILABLE, which producers retry, and changes nothing.
func (s *txnShard) carryOut(res txn.Result) txn.Result {
	if res.Write != nil {
		key, value := res.Write.Record()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.t.log.Append(ctx, s.index, offsets.Batch([]offsets.KV{{Key: key, Value: value}}, time.Now()))
		cancel()
		if err != nil {
			s.t.logger.Warn("writing transaction state failed; the producer retries", "partition", s.index, "transactional_id", res.Write.ID, "err", err)
			return txn.Result{Code: kerr.CoordinatorNotAvailable.Code, ProducerID: -1, Epoch: -1}
		}
		s.m.Apply(res.Write)
	}
	if res.Markers != nil {
		s.sendMarkers(res.Markers)
	}
	return res
}

// sendMarkers writes a transaction's markers off the loop, retrying until they are all
// written or the partition is unloaded, then completes the transaction on the loop.
func (s *txnShard) sendMarkers(mk *txn.Markers) {
	s.sending.Add(1)
	go func() {
		defer s.sending.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			err := s.t.markers.WriteMarkers(ctx, mk, s.epoch)
			if err == nil {
				break
			}
			s.t.logger.Warn("writing transaction markers failed; retrying", "transactional_id", mk.ID, "producer_id", mk.ProducerID, "commit", mk.Commit, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		select {
		case s.inbox <- func() {
			if res := s.carryOut(s.m.MarkersWritten(mk, time.Now())); res.Code != 0 {
				s.sendMarkers(mk) // the Complete record was not written: markers again, then retry it
			}
		}:
		case <-s.stop:
		}
	}()
}

// load replays the partition up to its high watermark.
func (s *txnShard) load() bool {
	started := time.Now()
	var offset int64
	records := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		batches, highWatermark, err := s.t.log.Read(ctx, s.index, offset, 1<<20)
		cancel()
		if err == nil {
			var next int64
			next, err = eachRecord(batches, func(key, value []byte) {
				if t, ok, derr := txn.DecodeRecord(key, value); derr == nil && ok {
					s.m.Apply(t)
					records++
				}
			})
			offset = max(offset, next)
		}
		if err != nil {
			s.t.logger.Warn("loading a transaction state partition failed; retrying", "partition", s.index, "offset", offset, "err", err)
			select {
			case <-s.stop:
				return false
			case <-time.After(time.Second):
			}
			continue
		}
		if offset >= highWatermark {
			break
		}
	}
	s.t.logger.Info("loaded transactions", "partition", s.index, "records", records, "took", time.Since(started).Round(time.Millisecond))
	return true
}

// eachRecord walks uncompressed v2 batches as read from __transaction_state, calling fn
// for each record's key and value, and returns the offset after the last whole batch.
// Control batches (none are written here) are skipped.
func eachRecord(batches []byte, fn func(key, value []byte)) (int64, error) {
	var next int64
	for len(batches) >= 12 {
		size := 12 + int(int32(binary.BigEndian.Uint32(batches[8:])))
		if size < 61 {
			return next, fmt.Errorf("corrupt %s batch of %d bytes", TransactionTopic, size)
		}
		if size > len(batches) {
			break
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(batches[:size]); err != nil {
			return next, fmt.Errorf("%s batch: %w", TransactionTopic, err)
		}
		batches = batches[size:]
		next = b.FirstOffset + int64(b.LastOffsetDelta) + 1
		if b.Attributes&0x20 != 0 {
			continue
		}
		recs := b.Records
		for range b.NumRecords {
			l, n := binary.Varint(recs)
			if n <= 0 || l < 0 || l > int64(len(recs)-n) {
				return next, fmt.Errorf("%s batch at %d: bad record", TransactionTopic, b.FirstOffset)
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:n+int(l)]); err != nil {
				return next, fmt.Errorf("%s batch at %d: %w", TransactionTopic, b.FirstOffset, err)
			}
			recs = recs[n+int(l):]
			fn(r.Key, r.Value)
		}
	}
	return next, nil
}
