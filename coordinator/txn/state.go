package txn

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a transaction's state, numbered as Kafka stores it in TxnMetadataValue.
type State int8

const (
	Empty             State = 0
	Ongoing           State = 1
	PrepareCommit     State = 2
	PrepareAbort      State = 3
	CompleteCommit    State = 4
	CompleteAbort     State = 5
	Dead              State = 6
	PrepareEpochFence State = 7
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// prepared reports whether markers are being written.
func (s State) prepared() bool { return s == PrepareCommit || s == PrepareAbort }

// finished reports whether no transaction is open: a new one may start.
func (s State) finished() bool { return s == Empty || s == CompleteCommit || s == CompleteAbort }

// TopicPartition is a partition a transaction wrote to.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

func compareTP(a, b TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// Txn is one transactional id's metadata. Methods that change a transaction work on a
// copy (clone), which the machine installs once its record is written.
type Txn struct {
	ID         string
	ProducerID int64
	Epoch      int16
	// PrevProducerID and PrevEpoch are what the producer held before the last bump, so
	// that a producer retrying InitProducerId after a lost answer is recognized (KIP-360).
	PrevProducerID int64
	PrevEpoch      int16
	TimeoutMs      int32
	State          State
	Partitions     []TopicPartition // sorted, no duplicates
	Start          time.Time        // when the transaction began (its first partition)
	Updated        time.Time        // when the metadata last changed
	// Version is the client's transaction version: 2 when it ends transactions with
	// EndTxn v5+ (KIP-890 part 2), which bumps the epoch at every end.
	Version int16
}

func (t *Txn) clone() *Txn {
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	return &c
}

// has reports whether the transaction holds tp.
func (t *Txn) has(tp TopicPartition) bool {
	_, ok := slices.BinarySearchFunc(t.Partitions, tp, compareTP)
	return ok
}

// add puts tps in the partition set.
func (t *Txn) add(tps []TopicPartition) {
	for _, tp := range tps {
		if i, ok := slices.BinarySearchFunc(t.Partitions, tp, compareTP); !ok {
			t.Partitions = slices.Insert(t.Partitions, i, tp)
		}
	}
}

func (t *Txn) String() string {
	var parts []string
	for _, tp := range t.Partitions {
		parts = append(parts, tp.String())
	}
	return fmt.Sprintf("%s pid=%d epoch=%d state=%s timeout=%dms partitions=[%s]", t.ID, t.ProducerID, t.Epoch, t.State, t.TimeoutMs, strings.Join(parts, " "))
}

// Record returns the transaction's __transaction_state record: Kafka's TxnMetadataKey
// (version 0) and TxnMetadataValue (version 0, with the partitions grouped by topic).
// Dead is written as a tombstone (nil value).
func (t *Txn) Record() (key, value []byte) {
	k := kmsg.TxnMetadataKey{Version: 0, TransactionalID: t.ID}
	key = k.AppendTo(nil)
	if t.State == Dead {
		return key, nil
	}
	v := kmsg.NewTxnMetadataValue()
	v.Version = 0
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis = t.ProducerID, t.Epoch, t.TimeoutMs
	v.State = kmsg.TransactionState(t.State)
	v.LastUpdateTimestamp = t.Updated.UnixMilli()
	v.StartTimestamp = -1
	if !t.Start.IsZero() {
		v.StartTimestamp = t.Start.UnixMilli()
	}
	for _, tp := range t.Partitions {
		if n := len(v.Topics); n == 0 || v.Topics[n-1].Topic != tp.Topic {
			v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
		}
		last := &v.Topics[len(v.Topics)-1]
		last.Partitions = append(last.Partitions, tp.Partition)
	}
	return key, v.AppendTo(nil)
}

// DecodeRecord reads a __transaction_state record. ok is false for a key of another
// version (not a transaction's). A nil value is a tombstone: the Txn is Dead.
func DecodeRecord(key, value []byte) (t *Txn, ok bool, err error) {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return nil, false, fmt.Errorf("transaction key: %w", err)
	}
	if k.Version != 0 {
		return nil, false, nil
	}
	t = &Txn{ID: k.TransactionalID, State: Dead, PrevProducerID: -1, PrevEpoch: -1}
	if value == nil {
		return t, true, nil
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return nil, false, fmt.Errorf("transaction %q value: %w", k.TransactionalID, err)
	}
	t.ProducerID, t.Epoch, t.TimeoutMs, t.State = v.ProducerID, v.ProducerEpoch, v.TimeoutMillis, State(v.State)
	t.Updated = time.UnixMilli(v.LastUpdateTimestamp)
	if v.StartTimestamp >= 0 {
		t.Start = time.UnixMilli(v.StartTimestamp)
	}
	if v.Version >= 1 {
		t.Version = v.ClientTransactionVersion
		if v.PreviousProducerID >= 0 {
			t.PrevProducerID = v.PreviousProducerID
		}
	}
	for _, topic := range v.Topics {
		for _, p := range topic.Partitions {
			t.add([]TopicPartition{{topic.Topic, p}})
		}
	}
	return t, true, nil
}
