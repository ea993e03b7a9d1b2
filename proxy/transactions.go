package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/coordinator/txn"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

// The transaction coordinator lives beside the group coordinator (DESIGN.md, "Coordinators
// live in the front tier"): this proxy holds leases on __transaction_state partitions as it
// holds them on __consumer_offsets partitions, loads each one it wins, and serves the
// transactional ids that hash onto it. Requests addressed by transactional id go through
// the forwarding engine like group requests: answered here when this proxy holds the id's
// lease, forwarded to the proxy that does otherwise.

// TransactionsConfig configures StartTransactions.
type TransactionsConfig struct {
	Partitions        int32 // transaction.state.log.num.partitions
	ReplicationFactor int16 // transaction.state.log.replication.factor (capped by the nodes)
	MinISR            int   // transaction.state.log.min.isr
	Machine           txn.Config
	// AbortCheckInterval: how often timed-out transactions are aborted
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 seconds).
	AbortCheckInterval time.Duration
	// LeaseTTL: how long a dead proxy's __transaction_state partitions stay unserved
	// before another proxy takes their leases over (the group leases' 15 seconds when 0).
	LeaseTTL time.Duration
}

// StartTransactions makes sure __transaction_state exists, then keeps the leases of its
// partitions as StartGroups does, loading each partition it wins. Call it after
// StartGroups: markers for __consumer_offsets go to the group coordinators.
func (p *Proxy) StartTransactions(ctx context.Context, cfg TransactionsConfig) error {
	partitions, err := p.ensureTransactionTopic(ctx, cfg)
	if err != nil {
		return err
	}
	t, err := coordinator.NewTransactions(coordinator.TransactionsConfig{
		Partitions: partitions, Machine: cfg.Machine, ProducerIDs: p.producerIDs.next, AbortCheckInterval: cfg.AbortCheckInterval,
	}, topicLog{p: p, topic: coordinator.TransactionTopic}, markerWriter{p}, p.logger.With("component", "transactions"))
	if err != nil {
		return err
	}
	ttl := cfg.LeaseTTL
	if ttl <= 0 {
		ttl = coordinatorLeaseTTL
	}
	p.txns.Store(t)
	p.keepTxnLeases(ctx, t, ttl)
	go func() {
		ticker := time.NewTicker(ttl / 3)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				t.Close()
				return
			case <-ticker.C:
				p.keepTxnLeases(ctx, t, ttl)
			case <-p.view.Changed():
				if p.freeTxnLease(t.Partitions()) {
					p.keepTxnLeases(ctx, t, ttl)
				}
			}
		}
	}()
	return nil
}

func (p *Proxy) ensureTransactionTopic(ctx context.Context, cfg TransactionsConfig) (int32, error) {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 50
	}
	rf := int16(min(max(int(cfg.ReplicationFactor), 1), len(p.view.Snapshot().Nodes)))
	if cfg.ReplicationFactor <= 0 {
		rf = int16(min(3, len(p.view.Snapshot().Nodes)))
	}
	configs := map[string]string{"cleanup.policy": "compact"}
	if cfg.MinISR > 0 {
		configs["min.insync.replicas"] = strconv.Itoa(min(cfg.MinISR, int(rf)))
	}
	spec := routing.TopicSpec{Name: coordinator.TransactionTopic, Partitions: cfg.Partitions, ReplicationFactor: rf, Configs: configs}
	if _, err := p.controller.CreateTopic(ctx, spec); err != nil && !errors.Is(err, routing.ErrTopicExists) {
		return 0, fmt.Errorf("create %s: %w", coordinator.TransactionTopic, err)
	}
	if err := p.view.Refresh(ctx); err != nil {
		return 0, err
	}
	t, ok := p.view.Snapshot().Topic(coordinator.TransactionTopic)
	if !ok {
		return 0, fmt.Errorf("%s is missing right after it was created", coordinator.TransactionTopic)
	}
	return int32(len(t.Partitions)), nil
}

func txnLeaseName(partition int32) string {
	return "coordinator/" + coordinator.TransactionTopic + "/" + strconv.Itoa(int(partition))
}

// keepTxnLeases renews or takes each __transaction_state partition's lease; the lease's
// token is the coordinator epoch stamped into markers.
func (p *Proxy) keepTxnLeases(ctx context.Context, t *coordinator.Transactions, ttl time.Duration) {
	p.leases.Lock()
	defer p.leases.Unlock()
	if p.draining.Load() {
		return
	}
	for i := range t.Partitions() {
		lease, err := p.store.AcquireLease(ctx, txnLeaseName(i), p.holder(), ttl)
		switch {
		case err == nil:
			t.Load(i, int32(lease.Token))
		case errors.Is(err, routing.ErrLeaseHeld):
			t.Unload(i)
		default:
			p.logger.Warn("cannot renew a transaction coordinator lease; keeping the partition while the lease lasts", "partition", i, "err", err)
		}
	}
}

func (p *Proxy) freeTxnLease(partitions int32) bool {
	snap, now := p.view.Snapshot(), time.Now()
	for i := range partitions {
		if l, ok := snap.Leases[txnLeaseName(i)]; !ok || !l.ExpiresAt.After(now) {
			return true
		}
	}
	return false
}

// drainTransactions hands over the transaction leases (Drain).
func (p *Proxy) drainTransactions(ctx context.Context) {
	t := p.txns.Load()
	if t == nil {
		return
	}
	snap := p.view.Snapshot()
	for i := range t.Partitions() {
		name := txnLeaseName(i)
		if snap.Leases[name].Holder != p.holder() {
			continue
		}
		t.Unload(i)
		if err := p.store.ReleaseLease(ctx, name, p.holder()); err != nil {
			p.logger.WarnContext(ctx, "releasing a transaction coordinator lease failed; another proxy takes it when it expires", "partition", i, "err", err)
		}
	}
}

// TransactionsLoaded reports whether every transaction partition this proxy holds is loaded.
func (p *Proxy) TransactionsLoaded() error {
	if t := p.txns.Load(); t != nil {
		return t.Loaded()
	}
	return nil
}

// txnCoordinatorOf returns the proxy holding a transactional id's lease.
func (p *Proxy) txnCoordinatorOf(id string) (routing.Proxy, int16) {
	t := p.txns.Load()
	if t == nil {
		return routing.Proxy{}, kerr.CoordinatorNotAvailable.Code
	}
	return p.leaseHolder(txnLeaseName(t.Partition(id)))
}

func (p *Proxy) transactions() (*coordinator.Transactions, error) {
	t := p.txns.Load()
	if t == nil {
		return nil, errors.New("proxy: transactions are not started (StartTransactions was not called)")
	}
	return t, nil
}

// txnRouter routes parts keyed by transactional id to their coordinators.
type txnRouter struct {
	p       *Proxy
	noRelay bool
}

func (r txnRouter) route(p *Proxy, _ *routing.Snapshot, id string) (target, error) {
	if r.noRelay {
		return target{local: true}, nil
	}
	owner, code := p.txnCoordinatorOf(id)
	switch {
	case code != 0:
		return target{}, fmt.Errorf("%w: transactional id %q has no live coordinator", errNoCoordinator, id)
	case owner.ID == p.cfg.BrokerID:
		return target{local: true}, nil
	}
	return target{id: owner.ID, addr: owner.Addr}, nil
}

func (txnRouter) stale(code int16) bool { return groupRouter{}.stale(code) }

// oneTxn forwards a request that names one transactional id (InitProducerId,
// AddPartitionsToTxn before v4, AddOffsetsToTxn, EndTxn): the whole request is the piece.
type oneTxn struct {
	txnRouter
	// op is what the principal must be allowed on the transactional id
	// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED otherwise); zero when the handler has
	// checked already.
	op     acl.Operation
	req    kmsg.Request
	id     string
	local  func(context.Context, *coordinator.Transactions) kmsg.Response
	codeOf func(kmsg.Response) int16
	failed func(code int16) kmsg.Response
}

func (a oneTxn) piece() kmsg.Request                         { return a.req }
func (oneTxn) add(kmsg.Request, *oneGroupPart)               {}
func (oneTxn) resendable(*oneGroupPart) bool                 { return true }
func (a oneTxn) code(out *kmsg.Response) int16               { return a.codeOf(*out) }
func (a oneTxn) fail(out *kmsg.Response, c int16, _ *string) { *out = a.failed(c) }

func (a oneTxn) answers(resp kmsg.Response, each func(string, int32, *kmsg.Response)) {
	each(a.id, 0, &resp)
}

func (a oneTxn) serveLocal(ctx context.Context, _ kmsg.Request) (kmsg.Response, error) {
	t, err := a.p.transactions()
	if err != nil {
		return nil, err
	}
	return a.local(ctx, t), nil
}

// serveTxn answers a one-id request: here if this proxy coordinates the id, else from its
// coordinator. Retriable coordinator errors are retried on a fresh view within 30 seconds.
func (p *Proxy) serveTxn(ctx context.Context, wr *wire.Request, a oneTxn) (kmsg.Response, error) {
	if _, err := p.transactions(); err != nil {
		return nil, err
	}
	if a.op != 0 && !p.allowed(ctx, a.op, acl.TransactionalID, a.id) {
		return a.failed(kerr.TransactionalIDAuthorizationFailed.Code), nil
	}
	a.txnRouter = txnRouter{p: p, noRelay: relayed(wr)}
	var out kmsg.Response
	pt := &oneGroupPart{topic: a.id, out: &out}
	forward(ctx, p, a, []*oneGroupPart{pt}, requestDeadline(30*time.Second))
	return out, nil
}

// topicLog reads and writes an internal topic's partitions through the forwarding
// engine, as offsetsLog does for __consumer_offsets.
type topicLog struct {
	p     *Proxy
	topic string
}

func (l topicLog) Append(ctx context.Context, partition int32, batch []byte) error {
	return appendInternal(ctx, l.p, l.topic, partition, batch, nil)
}

func (l topicLog) Read(ctx context.Context, partition int32, offset int64, maxBytes int32) ([]byte, int64, error) {
	return readInternal(ctx, l.p, l.topic, partition, offset, maxBytes)
}

// appendInternal produces batch to an internal topic's partition with acks=all, naming a
// transactional id when one is given.
func appendInternal(ctx context.Context, p *Proxy, topic string, partition int32, batch []byte, transactionalID *string) error {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 12, -1, 30_000, transactionalID
	out := kmsg.NewProduceResponseTopicPartition()
	pt := &producePart{topic: topic, index: partition, out: &out}
	pt.in.Partition, pt.in.Records = partition, batch
	forward(ctx, p, produceAdapter{req}, []*producePart{pt}, requestDeadline(time.Duration(req.TimeoutMillis)*time.Millisecond))
	return kerr.ErrorForCode(out.ErrorCode)
}

// readInternal fetches whole batches of an internal topic's partition and its high
// watermark.
func readInternal(ctx context.Context, p *Proxy, topic string, partition int32, offset int64, maxBytes int32) ([]byte, int64, error) {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.SessionEpoch = 12, -1, maxBytes, -1
	out := kmsg.NewFetchResponseTopicPartition()
	pt := &fetchPart{topic: topic, index: partition, out: &out}
	pt.in.Partition, pt.in.FetchOffset, pt.in.PartitionMaxBytes = partition, offset, maxBytes
	pt.in.CurrentLeaderEpoch, pt.in.LastFetchedEpoch = -1, -1
	forward(ctx, p, fetchAdapter{req}, []*fetchPart{pt}, requestDeadline(30*time.Second))
	if err := kerr.ErrorForCode(out.ErrorCode); err != nil {
		return nil, 0, err
	}
	return out.RecordBatches, out.HighWatermark, nil
}
