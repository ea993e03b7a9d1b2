package wire

import (
	"errors"
	"sync/atomic"
	"time"
)

// Defaults of Limits' fields.
const (
	// DefaultMaxNonRecordBytes bounds what kmsg decodes into structs (see Limits).
	DefaultMaxNonRecordBytes = 1 << 20 // 1 MiB
	// DefaultMaxInFlightBytes bounds what one connection holds: room for 32 pipelined
	// produce requests of 1 MiB, a client's usual batch size, and their answers.
	DefaultMaxInFlightBytes = 64 << 20 // 64 MiB
	// DefaultRequestReadTimeout bounds the reading of one request. It is Kafka clients'
	// request.timeout.ms: by then the client has given up on the request anyway.
	DefaultRequestReadTimeout = 30 * time.Second
	// DefaultIdleTimeout is Kafka's connections.max.idle.ms.
	DefaultIdleTimeout = 10 * time.Minute

	// DefaultMaxInFlight bounds the requests read ahead on an ordinary connection. A Kafka
	// client keeps at most max.in.flight.requests.per.connection (5 by default) in flight.
	DefaultMaxInFlight = 32
	// DefaultMaxInFlightInternal bounds the requests read ahead on an internal connection,
	// over which a proxy multiplexes its clients' requests, long polls included: room for
	// a thousand parked fetches on each of a proxy's connections to a node. The byte
	// bounds still hold what they hold.
	DefaultMaxInFlightInternal = 1024
)

// initialFrameBytes is the buffer a request frame starts with. It doubles as bytes arrive,
// up to the frame's announced size, so a peer has to send bytes to make a server hold them.
const initialFrameBytes = 16 << 10

// Limits bound what peers can make a Server hold, and for how long. Zero fields take
// their defaults.
type Limits struct {
	// MaxConnections bounds the connections served at once; past it a new connection is
	// closed as soon as it is accepted (Kafka's max.connections). Internal connections
	// count too. 0 = no limit.
	MaxConnections int
	// MaxRequestBytes bounds a request frame, checked against its size prefix (Kafka's
	// socket.request.max.bytes); 0 = DefaultMaxRequestBytes.
	MaxRequestBytes int32
	// MaxNonRecordBytes bounds the bytes of a request other than its record batches:
	// the whole frame of any API but Produce, and a Produce frame less its records.
	// Decoding may allocate up to decodeAmplification bytes for each of these, so they
	// must stay small; record batches are not copied. 0 = DefaultMaxNonRecordBytes.
	MaxNonRecordBytes int32
	// MaxInFlight bounds the requests read ahead on one ordinary connection (Kafka
	// clients') and MaxInFlightInternal on one internal connection: requests read and
	// not yet answered. 0 = DefaultMaxInFlight, DefaultMaxInFlightInternal.
	MaxInFlight         int
	MaxInFlightInternal int
	// MaxInFlightBytes bounds the bytes one connection holds: requests read (with what
	// decoding them may allocate) and answers not yet written. Past it the connection
	// is not read until answers drain, except that a connection holding nothing may
	// always read one request, however large. 0 = DefaultMaxInFlightBytes.
	MaxInFlightBytes int64
	// RequestReadTimeout bounds the time from a request's first byte to its last, time
	// spent waiting for a budget included; past it the connection is closed.
	// 0 = DefaultRequestReadTimeout.
	RequestReadTimeout time.Duration
	// IdleTimeout closes a connection with nothing in flight that sent nothing for that
	// long (Kafka's connections.max.idle.ms), and one whose peer took nothing of an answer
	// for that long. 0 = DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Budget bounds, across the Servers that share it, what all their connections hold.
	// nil = a budget of DefaultMemoryBudget for this Server alone.
	Budget *MemoryBudget
}

func (l *Limits) maxRequestBytes() int32 {
	if l.MaxRequestBytes <= 0 {
		return DefaultMaxRequestBytes
	}
	return l.MaxRequestBytes
}

func (l *Limits) maxNonRecordBytes() int32 {
	if l.MaxNonRecordBytes <= 0 {
		return min(DefaultMaxNonRecordBytes, l.maxRequestBytes())
	}
	return min(l.MaxNonRecordBytes, l.maxRequestBytes())
}

func (l *Limits) maxInFlight() int {
	if l.MaxInFlight <= 0 {
		return DefaultMaxInFlight
	}
	return l.MaxInFlight
}

func (l *Limits) maxInFlightInternal() int {
	if l.MaxInFlightInternal <= 0 {
		return DefaultMaxInFlightInternal
	}
	return l.MaxInFlightInternal
}

func (l *Limits) maxInFlightBytes() int64 {
	if l.MaxInFlightBytes <= 0 {
		return DefaultMaxInFlightBytes
	}
	return l.MaxInFlightBytes
}

func (l *Limits) requestReadTimeout() time.Duration {
	if l.RequestReadTimeout <= 0 {
		return DefaultRequestReadTimeout
	}
	return l.RequestReadTimeout
}

func (l *Limits) idleTimeout() time.Duration {
	if l.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return l.IdleTimeout
}

// Why a server closes a connection on its own, besides a bad request; each is counted
// apart in ServerStats.
var (
	errIdle               = errors.New("idle for longer than the idle timeout")
	errRequestReadTimeout = errors.New("request not received in full within the request read timeout")
	errWriteTimeout       = errors.New("peer took nothing of an answer for longer than the idle timeout")
	// errDraining stops a reader waiting for a budget when the server shuts down.
	errDraining = errors.New("wire: server shutting down")
)

// ServerStats is a snapshot of a Server's connections and of the memory they hold.
// Counts are since the Server was created.
type ServerStats struct {
	OpenConnections int64
	// HeldBytes is what the server's connections hold now: request frames read or being
	// read, what decoding them may allocate, and answers not yet written.
	HeldBytes int64
	// InFlightRequests is the requests read and not yet answered, on all connections.
	InFlightRequests int64
	// ReadPauses counts the times a connection stopped reading, for any of three
	// reasons, also counted apart: it had MaxInFlight requests in flight
	// (PausedInFlightRequests), or MaxInFlightBytes (PausedInFlightBytes), or the
	// memory budget was spent (PausedMemoryBudget).
	ReadPauses             int64
	PausedInFlightRequests int64
	PausedInFlightBytes    int64
	PausedMemoryBudget     int64
	// RefusedConnections counts the connections closed on accept because
	// MaxConnections were open.
	RefusedConnections int64
	// Connections closed by the server: idle, a request not received in time, an answer
	// not taken in time, a malformed or oversized request.
	ClosedIdle         int64
	ClosedReadTimeout  int64
	ClosedWriteTimeout int64
	ClosedBadRequest   int64
}

// serverCounters are the atomics behind ServerStats.
type serverCounters struct {
	open, held, inFlight, refused                       atomic.Int64
	pausedRequests, pausedBytes, pausedBudget           atomic.Int64
	closedIdle, closedRead, closedWrite, closedBadInput atomic.Int64
}

func (c *serverCounters) snapshot() ServerStats {
	s := ServerStats{
		OpenConnections:        c.open.Load(),
		HeldBytes:              c.held.Load(),
		InFlightRequests:       c.inFlight.Load(),
		PausedInFlightRequests: c.pausedRequests.Load(),
		PausedInFlightBytes:    c.pausedBytes.Load(),
		PausedMemoryBudget:     c.pausedBudget.Load(),
		RefusedConnections:     c.refused.Load(),
		ClosedIdle:             c.closedIdle.Load(),
		ClosedReadTimeout:      c.closedRead.Load(),
		ClosedWriteTimeout:     c.closedWrite.Load(),
		ClosedBadRequest:       c.closedBadInput.Load(),
	}
	s.ReadPauses = s.PausedInFlightRequests + s.PausedInFlightBytes + s.PausedMemoryBudget
	return s
}

// countClose counts a connection the server closed for cause err.
func (c *serverCounters) countClose(err error) {
	switch {
	case errors.Is(err, errIdle):
		c.closedIdle.Add(1)
	case errors.Is(err, errRequestReadTimeout):
		c.closedRead.Add(1)
	case errors.Is(err, errWriteTimeout):
		c.closedWrite.Add(1)
	case errors.Is(err, errBadRequest):
		c.closedBadInput.Add(1)
	}
}
