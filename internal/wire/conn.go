package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// errConnClosed is the cause a connection's context ends with when it closes normally.
var errConnClosed = errors.New("wire: connection closed")

// conn serves one connection with three kinds of goroutine: serve reads and decodes
// requests, one goroutine per request runs the handler and encodes its answer, and
// writeLoop writes the answers, putting them back in request order unless the
// connection is internal.
//
// On an ordinary connection each handler starts only after the previous request's
// handler returned, as a Kafka broker handles one request per connection at a time:
// a client that pipelines two produce requests to one partition relies on that for
// their order. Reading and decoding still run ahead. Internal connections (Strait's
// own, declared by their first request) run their handlers concurrently and are
// answered as handlers finish.
//
// Read-ahead is bounded by count and by bytes. The reader reads a request only while
// fewer than MaxInFlight (MaxInFlightInternal on an internal connection) are read and not
// yet answered or dropped. The bytes a connection holds (frames as their buffers grow,
// what decoding may allocate, answers until written) are counted in held and in the
// memory budget; the reader waits while they are spent, so a client that does not read
// its answers stops being read.
//
// Two deadlines bound a peer's time: a request's bytes must all arrive within
// RequestReadTimeout of its first, and a connection with nothing in flight is closed after
// IdleTimeout without a byte. The reader arms the read deadline as it waits for a
// request or starts one; the writer arms the idle one when the last request in flight is
// answered while the reader waits.
type conn struct {
	srv      *Server
	nc       net.Conn
	log      *slog.Logger
	versions versionsFunc
	sendfile bool // Spliced responses go from file to socket (ZeroCopy, over TCP)
	limits   *Limits
	budget   *MemoryBudget

	ctx     context.Context // cancelled, with the cause, when the connection fails or closes
	cancel  context.CancelCauseFunc
	remote  string // the peer's address
	results chan *result
	stop    chan struct{} // closed by drain, to wake a reader waiting for a budget

	auth connAuth // who the peer is (security.go)

	handlers sync.WaitGroup // running handlers; results is closed once they are done
	draining atomic.Bool    // set by Shutdown: read nothing more, answer what was read
	failOnce sync.Once
	stopOnce sync.Once

	mu struct {
		sync.Mutex
		held    int64         // bytes held in the budgets: reading, in flight, answers
		reading int64         // of which by the request being read and decoded
		answers int64         // of which by answers not yet written
		changed chan struct{} // closed, and replaced, whenever held or inFlight drops
		emptied chan struct{} // closed once the request being read is all that is held

		inFlight      int       // requests read and not yet answered or dropped
		awaiting      bool      // the reader waits for a request's first byte
		frameDeadline time.Time // when the request being read must be complete
	}

	// The reader's own.
	internal bool          // the first request declared the connection internal
	requests uint64        // requests read so far
	nextSeq  uint64        // position of the next in-order request
	lastDone chan struct{} // closed when the last ordered request's handler returned
}

// result is one request's answer on its way to the writer.
type result struct {
	corr    int32
	ordered bool   // written in request order, at position seq
	seq     uint64 // among ordered results
	frame   []byte // the encoded response; nil sends nothing
	err     error  // the handler failed: close the connection
	bytesIn int
	done    func(bytesIn, bytesOut int, err error) // from Observe

	reqHeld int64 // the request's frame and decoding allowance, held until its handler returns
	held    int64 // the answer's bytes, held until written or dropped

	spliced *splicedFrame // instead of frame: an answer sent partly from files
	release func()        // from a Spliced answer; called by finish

	// closeAfter closes the connection once the answer is written (a failed
	// authentication is answered before the connection closes, as Kafka does).
	closeAfter bool
}

// newConn prepares nc to be served. Handlers that finish while the writer is busy wait
// to hand it their answers past the first MaxInFlight, which only internal connections
// read ahead.
func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancelCause(context.Background())
	remote := nc.RemoteAddr().String()
	if s.Security.TLS != nil {
		nc = tls.Server(nc, s.Security.TLS) // the handshake runs on the connection's goroutine
	}
	return &conn{
		srv:      s,
		nc:       nc,
		log:      s.logger().With("remote", remote),
		versions: clampVersions(s.Versions),
		sendfile: s.ZeroCopy && canSendFile(nc),
		limits:   &s.Limits,
		budget:   s.memoryBudget(),
		ctx:      ctx,
		cancel:   cancel,
		remote:   remote,
		results:  make(chan *result, s.maxInFlight()),
		stop:     make(chan struct{}),
	}
}

// serve runs the connection to its end. Reading stops on an error or a drain; then the
// handlers that were started finish, the writer writes (or, after an error, drops) their
// answers, and the connection closes.
func (c *conn) serve() {
	defer c.srv.forgetConn(c)
	written := make(chan struct{})
	go func() {
		defer close(written)
		c.writeLoop()
	}()
	err := c.authenticatePeer()
	if err == nil {
		err = c.readLoop()
	}
	if !c.draining.Load() || errors.Is(err, errAuthFailed) {
		c.fail(err)
	}
	c.handlers.Wait()
	close(c.results)
	<-written
	c.fail(errConnClosed)
	c.releaseAll()
}

// authenticatePeer runs the TLS handshake, if any, and sets who the peer is as far as
// its certificate says.
func (c *conn) authenticatePeer() error {
	cert, err := c.handshakeTLS()
	if err != nil {
		return err
	}
	c.startAuth(cert)
	return nil
}

// drain makes the reader stop at its next read; what was read is still answered.
func (c *conn) drain() {
	c.draining.Store(true)
	c.stopOnce.Do(func() { close(c.stop) })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armReadDeadlineLocked() // wakes a reader blocked on an idle connection
}

// fail closes the connection at once, logging and counting the first cause.
func (c *conn) fail(err error) {
	c.failOnce.Do(func() {
		c.logClose(err)
		c.srv.stats.countClose(err)
		c.cancel(err)
		c.nc.Close()
	})
}

// logClose logs why the connection closes: at Warn when the peer or a handler misbehaved,
// at Debug when it simply went away or idled out, as Kafka clients expect to be.
func (c *conn) logClose(err error) {
	switch {
	case errors.Is(err, errBadRequest):
		c.log.Warn("wire: bad request, closing connection", "err", err)
	case errors.Is(err, errRequestReadTimeout):
		c.log.Warn("wire: closing connection: a request did not arrive in full in time; the peer is stalled or its link too slow for the request read timeout", "err", err)
	case errors.Is(err, errWriteTimeout):
		c.log.Warn("wire: closing connection: the peer stopped reading its answers", "err", err)
	case errors.Is(err, errIdle):
		c.log.Debug("wire: closing idle connection", "err", err)
	case errors.Is(err, errAuthFailed), errors.Is(err, errNotAuthenticated), errors.Is(err, errSessionExpired):
		c.log.Info("wire: closing connection: not authenticated", "err", err)
	case errors.Is(err, errConnClosed), errors.Is(err, ErrServerClosed), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("wire: connection closed", "err", err)
	default:
		c.log.Warn("wire: closing connection", "err", err)
	}
}

// readLoop reads and dispatches requests until an error or a drain.
func (c *conn) readLoop() error {
	br := bufio.NewReader(c.nc)
	for !c.draining.Load() {
		if err := c.acquire(); err != nil {
			return err
		}
		// Answers not yet written count too: a peer that does not read them is not read.
		if err := c.awaitRoom(initialFrameBytes); err != nil {
			return err
		}
		payload, err := c.readRequest(br)
		if err != nil {
			return fmt.Errorf("wire: read request from %s: %w", c.nc.RemoteAddr(), err)
		}
		if err := c.dispatch(payload); err != nil {
			return fmt.Errorf("wire: request from %s: %w", c.nc.RemoteAddr(), err)
		}
	}
	return nil
}

// acquire waits until the connection may read one more request ahead, or fails.
func (c *conn) acquire() error {
	limit := c.limits.maxInFlight()
	if c.internal {
		limit = c.limits.maxInFlightInternal()
	}
	for paused := false; ; paused = true {
		c.mu.Lock()
		room := c.mu.inFlight < limit
		var changed chan struct{}
		if !room {
			changed = c.changedLocked()
		}
		c.mu.Unlock()
		if room {
			return nil
		}
		if !paused {
			c.srv.stats.pausedRequests.Add(1)
		}
		select {
		case <-changed:
		case <-c.ctx.Done():
			return context.Cause(c.ctx)
		case <-c.stop:
			return errDraining
		}
	}
}

// readRequest reads one request frame into a buffer that grows as its bytes arrive,
// reserving each buffer first. Only Produce frames may be larger than MaxNonRecordBytes:
// the api key, which opens the payload, is checked before the buffer is.
func (c *conn) readRequest(br *bufio.Reader) ([]byte, error) {
	if err := c.awaitRequest(br); err != nil {
		return nil, err
	}
	var head [6]byte // size and api key
	if _, err := io.ReadFull(br, head[:4]); err != nil {
		return nil, c.readErr(noEOF(err))
	}
	size := int32(binary.BigEndian.Uint32(head[:4]))
	if limit := c.limits.maxRequestBytes(); size < 0 || size > limit {
		return nil, fmt.Errorf("%w %d outside [0, %d]", errFrameSize, size, limit)
	}
	start := head[4:4]
	if size >= 2 {
		if _, err := io.ReadFull(br, head[4:6]); err != nil {
			return nil, c.readErr(noEOF(err))
		}
		start = head[4:6]
		key := int16(binary.BigEndian.Uint16(start))
		if limit := c.limits.maxNonRecordBytes(); key != produceKey && size > limit {
			return nil, fmt.Errorf("%w %d for %s outside [0, %d]: only Produce may be larger",
				errFrameSize, size, kmsg.NameForKey(key), limit)
		}
	}
	payload, err := readPayload(br, int(size), start,
		func(n int) error { return c.reserve(int64(n)) },
		func(n int) { c.releaseReading(int64(n)) })
	if err != nil {
		return nil, c.readErr(err)
	}
	return payload, nil
}

// awaitRequest waits for the first byte of a request, under the idle deadline when
// nothing is in flight, then starts the request's read deadline.
func (c *conn) awaitRequest(br *bufio.Reader) error {
	c.mu.Lock()
	c.mu.awaiting = true
	c.armReadDeadlineLocked()
	c.mu.Unlock()

	_, err := br.Peek(1)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.awaiting = false
	switch {
	case err == nil:
		c.mu.frameDeadline = time.Now().Add(c.limits.requestReadTimeout())
		c.armReadDeadlineLocked()
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded) && !c.draining.Load():
		return fmt.Errorf("%w (%s)", errIdle, c.limits.idleTimeout())
	default:
		return err
	}
}

// armReadDeadlineLocked sets the read deadline for what the reader is doing: none while
// it waits for a request with requests in flight, the idle timeout while it waits with
// none, the request's deadline while it reads one, and now once draining.
func (c *conn) armReadDeadlineLocked() {
	var deadline time.Time
	switch {
	case c.draining.Load():
		deadline = time.Now()
	case c.mu.awaiting && c.mu.inFlight == 0:
		deadline = time.Now().Add(c.limits.idleTimeout())
	case !c.mu.awaiting:
		deadline = c.mu.frameDeadline
	}
	c.nc.SetReadDeadline(deadline)
}

// readErr marks a read that ran out of time as a request read timeout.
func (c *conn) readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && !c.draining.Load() {
		return fmt.Errorf("%w (%s): %w", errRequestReadTimeout, c.limits.requestReadTimeout(), err)
	}
	return err
}

// dispatch decodes one request frame and starts its handler. Decoding reserves what it
// may allocate before kmsg allocates anything.
func (c *conn) dispatch(payload []byte) error {
	h, rest, err := parseRequestHeader(payload)
	if err != nil {
		return err
	}
	body, tags, err := decodeRequest(h, payload, rest, c.versions, int(c.limits.maxNonRecordBytes()), c.reserve)
	c.declare(h, tags)
	origin, originErr := c.origin(h, tags)
	if err == nil {
		err = originErr
	}
	req := &Request{Header: h, Body: body, RemoteAddr: c.nc.RemoteAddr(), Origin: origin, Internal: c.internal}
	if err != nil {
		req.Body = nil
	}
	ctx, done := c.srv.observe(WithOrigin(c.ctx, origin), req)
	res := &result{corr: h.CorrelationID, bytesIn: 4 + len(payload), done: done}
	c.order(res)
	switch {
	case h.Key == apiVersionsKey && errors.Is(err, errUnsupportedVersion):
		res.reqHeld = c.dispatched()
		c.results <- c.answerUnsupportedAPIVersions(res, err)
		return nil
	case err != nil:
		done(res.bytesIn, 0, err)
		return err
	}
	res.reqHeld = c.dispatched()
	var after <-chan struct{}
	var handled chan struct{}
	if res.ordered {
		after, handled = c.lastDone, make(chan struct{})
		c.lastDone = handled
	}
	c.handlers.Add(1)
	c.srv.handlerWorkers().run(func() { c.handle(ctx, req, res, after, handled) })
	return nil
}

// declare makes the connection internal if its first request is an ApiVersions that
// declares it (the handshake, see doc.go). Later declarations are ignored: a connection
// is internal from its first request or never, so no ordered answer is ever in flight
// on an internal connection.
func (c *conn) declare(h RequestHeader, tags headerTags) {
	if c.requests == 0 && h.Key == apiVersionsKey && tags.internal >= internalProtocol {
		if cert := c.certPrincipal(); c.srv.Security.mayDeclareInternal(cert) {
			c.internal = true
			c.log.Debug("wire: internal connection", "client_id", h.ClientID, "protocol", tags.internal, "principal", cert)
		} else {
			c.log.Info("wire: refusing a connection's claim to be internal: it presented no client certificate of an internal peer; serving it as an ordinary client",
				"client_id", h.ClientID, "principal", cert)
		}
	}
	c.requests++
}

// origin is who the request comes from: the connection's client, unless an internal
// connection names another in the request's tags. An ordinary connection's principal
// is set as its request is handled (gate), after the requests before it, which may
// authenticate it.
func (c *conn) origin(h RequestHeader, tags headerTags) (Origin, error) {
	o := Origin{ClientID: h.ClientID, ClientAddr: c.remote, Listener: c.srv.Security.Listener}
	if !c.internal {
		return o, nil
	}
	o.Principal = c.principal() // the peer's own, unless it speaks for a client
	return tags.origin(o)
}

// order places res among the connection's answers: in request order unless the
// connection is internal.
func (c *conn) order(res *result) {
	if !c.internal {
		res.ordered, res.seq = true, c.nextSeq
		c.nextSeq++
	}
}

// answerUnsupportedAPIVersions answers an ApiVersions request newer than the server at
// version 0 rather than closing the connection (KIP-511), so the client can retry lower.
func (c *conn) answerUnsupportedAPIVersions(res *result, why error) *result {
	c.log.Debug("wire: answering ApiVersions with UNSUPPORTED_VERSION", "err", why)
	res.frame, res.err = appendResponse(nil, res.corr, unsupportedAPIVersions(c.versions))
	c.answered(res)
	return res
}

// handle runs the handler for one request and hands its encoded answer to the writer.
// An ordered request first waits for its predecessor (after) and, once its handler
// returns, lets its successor go (handled); nil channels mean no waiting.
func (c *conn) handle(ctx context.Context, req *Request, res *result, after <-chan struct{}, handled chan struct{}) {
	defer c.handlers.Done()
	if after != nil {
		select {
		case <-after:
		case <-c.ctx.Done():
		}
	}
	var resp kmsg.Response
	err := c.awaitAnswerRoom()
	answered := false // by the gate itself
	if err == nil {
		ctx, resp, answered, err = c.gate(ctx, req)
	}
	if errors.Is(err, errCloseAfterAnswer) {
		res.closeAfter, err = true, nil
	}
	if err == nil && !answered {
		resp, err = c.callHandler(ctx, req)
	}
	if handled != nil {
		close(handled)
	}
	sp, isSpliced := resp.(*Spliced)
	if isSpliced {
		if sp != nil {
			res.release = sp.Release
		}
		if err == nil && (sp == nil || sp.Response == nil) {
			err = errors.New("wire: Spliced answer without a response")
		}
	}
	if err == nil && resp != nil {
		res.frame, err = encodeAnswer(req, resp)
	}
	if err == nil && isSpliced {
		err = c.splice(res, sp)
	}
	res.err = err
	c.answered(res)
	c.results <- res
}

// answered moves what res holds from its request to its answer: the answer's bytes in
// memory are counted before the request's are given back, so that a connection with
// something in flight never looks empty to the reader.
func (c *conn) answered(res *result) {
	res.held = int64(len(res.frame))
	if res.spliced != nil {
		res.held = res.spliced.memoryBytes()
	}
	c.charge(res.held)
	c.release(res.reqHeld, false)
	res.reqHeld = 0
}

// splice cuts res.frame at sp's placeholders. The writer sends the file ranges with
// sendfile if it can; otherwise they are copied into the frame here, and released.
func (c *conn) splice(res *result, sp *Spliced) error {
	sf, err := spliceFrame(res.frame, sp)
	res.frame = nil
	if err != nil {
		return err
	}
	if c.sendfile {
		res.spliced = sf
		return nil
	}
	res.frame, err = sf.flatten()
	if res.release != nil {
		res.release()
		res.release = nil
	}
	return err
}

// callHandler runs the handler, turning a panic into an error so that one bad request
// closes its connection rather than the process.
func (c *conn) callHandler(ctx context.Context, req *Request) (resp kmsg.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, fmt.Errorf("wire: handler panic on %s: %v\n%s", kmsg.NameForKey(req.Header.Key), p, debug.Stack())
		}
	}()
	return c.srv.Handler.ServeKafka(ctx, req)
}

// encodeAnswer encodes resp as the answer to req, at req's version.
func encodeAnswer(req *Request, resp kmsg.Response) ([]byte, error) {
	if resp.Key() != req.Header.Key {
		return nil, fmt.Errorf("wire: handler answered %s with %s", kmsg.NameForKey(req.Header.Key), kmsg.NameForKey(resp.Key()))
	}
	resp.SetVersion(req.Header.Version)
	return appendResponse(nil, req.Header.CorrelationID, resp)
}

// writeLoop writes answers as they come, in request order for ordered ones, until results
// is closed. It flushes only when it has nothing left to write, so that pipelined small
// answers leave in one write.
func (c *conn) writeLoop() {
	bw := bufio.NewWriter(c.nc)
	q := reorder{pending: make(map[uint64]*result)}
	for {
		res, ok := c.nextResult(bw)
		if !ok {
			break
		}
		if res.err != nil { // a failed handler closes the connection without waiting its turn
			c.fail(fmt.Errorf("wire: handling request from %s: %w", c.nc.RemoteAddr(), res.err))
			c.finish(res, 0, res.err)
			continue
		}
		for _, r := range q.push(res) {
			c.write(bw, r)
			if r.closeAfter {
				c.flush(bw)
				c.fail(errCloseAfterAnswer)
			}
		}
	}
	for _, r := range q.pending { // gaps remain only after a failure
		c.finish(r, 0, context.Cause(c.ctx))
	}
	c.flush(bw)
}

// nextResult returns the next answer, flushing what was written before it blocks.
func (c *conn) nextResult(bw *bufio.Writer) (*result, bool) {
	select {
	case res, ok := <-c.results:
		return res, ok
	default:
	}
	c.flush(bw)
	res, ok := <-c.results
	return res, ok
}

// writeChunk bounds one write to the socket, so that the write deadline measures the
// peer's progress rather than the answer's size.
const writeChunk = 1 << 20

// write writes one answer, or drops it once the connection has failed.
func (c *conn) write(bw *bufio.Writer, res *result) {
	if err := context.Cause(c.ctx); err != nil {
		c.finish(res, 0, err)
		return
	}
	var err error
	size := len(res.frame)
	if res.spliced != nil {
		c.armWriteDeadline()
		size = res.spliced.size
		err = res.spliced.writeTo(bw, c.nc)
	} else {
		err = c.writeFrame(bw, res.frame)
	}
	if err != nil {
		err = c.writeErr(err)
		c.fail(err)
		c.finish(res, 0, err)
		return
	}
	c.finish(res, size, nil)
}

// writeFrame writes frame in chunks, each under a fresh write deadline.
func (c *conn) writeFrame(bw *bufio.Writer, frame []byte) error {
	for len(frame) > 0 {
		n := min(len(frame), writeChunk)
		c.armWriteDeadline()
		if _, err := bw.Write(frame[:n]); err != nil {
			return err
		}
		frame = frame[n:]
	}
	return nil
}

func (c *conn) flush(bw *bufio.Writer) {
	if bw.Buffered() == 0 || c.ctx.Err() != nil {
		return
	}
	c.armWriteDeadline()
	if err := bw.Flush(); err != nil {
		c.fail(c.writeErr(err))
	}
}

// armWriteDeadline gives the peer IdleTimeout to take the next bytes of an answer: a peer
// that reads nothing for that long holds its answers' memory for nothing.
func (c *conn) armWriteDeadline() {
	c.nc.SetWriteDeadline(time.Now().Add(c.limits.idleTimeout()))
}

// writeErr wraps a write error, marking a write that ran out of time.
func (c *conn) writeErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("wire: write response to %s: %w (%s): %w", c.nc.RemoteAddr(), errWriteTimeout, c.limits.idleTimeout(), err)
	}
	return fmt.Errorf("wire: write response to %s: %w", c.nc.RemoteAddr(), err)
}

// finish reports a written or dropped answer, releases its files and bytes, and lets the
// reader read one more request ahead. The last answer in flight starts the idle deadline
// if the reader waits for a request.
func (c *conn) finish(res *result, bytesOut int, err error) {
	if res.release != nil {
		res.release()
	}
	res.done(res.bytesIn, bytesOut, err)
	c.release(res.held, true)
	c.mu.Lock()
	c.mu.inFlight--
	c.srv.stats.inFlight.Add(-1)
	c.wakeLocked()
	if c.mu.inFlight == 0 && c.mu.awaiting {
		c.armReadDeadlineLocked()
	}
	c.mu.Unlock()
}

// reorder holds ordered answers that are ready before the ones read ahead of them.
type reorder struct {
	next    uint64
	pending map[uint64]*result
}

// push adds res and returns the answers that can now be written, in order. An
// out-of-order answer is returned at once.
func (q *reorder) push(res *result) []*result {
	if !res.ordered {
		return []*result{res}
	}
	q.pending[res.seq] = res
	var ready []*result
	for r, ok := q.pending[q.next]; ok; r, ok = q.pending[q.next] {
		delete(q.pending, q.next)
		ready = append(ready, r)
		q.next++
	}
	return ready
}
