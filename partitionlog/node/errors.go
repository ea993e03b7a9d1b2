package node

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strait-io/strait/partitionlog"
)

var (
	errUnknownPartition             = errors.New("unknown topic or partition")
	errNotLeader                    = errors.New("this node does not lead the partition")
	errNotEnoughReplicas            = errors.New("not enough in-sync replicas")
	errNotEnoughReplicasAfterAppend = errors.New("written, but the in-sync replicas shrank below min.insync.replicas")
	errRequestTimedOut              = errors.New("request timed out")
)

// errorCode maps what the node and its logs return to the Kafka error code for one
// partition; only this edge speaks in Kafka codes.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, errNotLeader), errors.Is(err, partitionlog.ErrClosed):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, partitionlog.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, partitionlog.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, partitionlog.ErrInvalidTimestamp):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, partitionlog.ErrUnsupportedCompression):
		return kerr.UnsupportedCompressionType.Code
	case errors.Is(err, partitionlog.ErrTransactionalIDRequired):
		return kerr.TransactionalIDAuthorizationFailed.Code
	case errors.Is(err, partitionlog.ErrMessageTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, partitionlog.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, partitionlog.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, partitionlog.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, partitionlog.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, partitionlog.ErrStorage):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, errNotEnoughReplicas):
		return kerr.NotEnoughReplicas.Code
	case errors.Is(err, errNotEnoughReplicasAfterAppend):
		return kerr.NotEnoughReplicasAfterAppend.Code
	case errors.Is(err, errRequestTimedOut):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, errFencedLeaderEpoch):
		return kerr.FencedLeaderEpoch.Code
	case errors.Is(err, errUnknownLeaderEpoch):
		return kerr.UnknownLeaderEpoch.Code
	default:
		return kerr.KafkaStorageError.Code
	}
}

var (
	errFencedLeaderEpoch  = errors.New("request's leader epoch is older than the partition's")
	errUnknownLeaderEpoch = errors.New("request's leader epoch is newer than the partition's")
)

// checkLeaderEpoch validates a client's current leader epoch (KIP-320); -1 skips the check.
func checkLeaderEpoch(requested, current int32) error {
	switch {
	case requested < 0 || requested == current:
		return nil
	case requested < current:
		return errFencedLeaderEpoch
	default:
		return errUnknownLeaderEpoch
	}
}
