package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
// writeLoop writes the answers, putting them back in request order unless the client
// opted out.
//
// On an ordinary connection each handler starts only after the previous request's
// handler returned, as a Kafka broker handles one request per connection at a time:
// a client that pipelines two produce requests to one partition relies on that for
// their order. Reading and decoding still run ahead. Out-of-order connections
// (Strait's own) run their handlers concurrently.
//
// Each request read takes a token from tokens and the writer gives it back once the answer
// is written or dropped, so at most MaxInFlight requests are read ahead and results never
// blocks.
type conn struct {
	srv      *Server
	nc       net.Conn
	log      *slog.Logger
	versions versionsFunc
	sendfile bool // Spliced responses go from file to socket (ZeroCopy, over TCP)

	ctx     context.Context // cancelled, with the cause, when the connection fails or closes
	cancel  context.CancelCauseFunc
	tokens  chan struct{}
	results chan *result

	handlers sync.WaitGroup // running handlers; results is closed once they are done
	draining atomic.Bool    // set by Shutdown: read nothing more, answer what was read
	failOnce sync.Once

	// outOfOrder is set, by the reader only, once the client sent OutOfOrderClientID.
	outOfOrder bool
	nextSeq    uint64        // position of the next in-order request; reader only
	lastDone   chan struct{} // closed when the last ordered request's handler returned; reader only
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

	spliced *splicedFrame // instead of frame: an answer sent partly from files
	release func()        // from a Spliced answer; called by finish
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancelCause(context.Background())
	n := s.maxInFlight()
	return &conn{
		srv:      s,
		nc:       nc,
		log:      s.logger().With("remote", nc.RemoteAddr().String()),
		versions: clampVersions(s.Versions),
		sendfile: s.ZeroCopy && canSendFile(nc),
		ctx:      ctx,
		cancel:   cancel,
		tokens:   make(chan struct{}, n),
		results:  make(chan *result, n),
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
	if err := c.readLoop(); !c.draining.Load() {
		c.fail(err)
	}
	c.handlers.Wait()
	close(c.results)
	<-written
	c.fail(errConnClosed)
}

// drain makes the reader stop at its next read; what was read is still answered.
func (c *conn) drain() {
	c.draining.Store(true)
	c.nc.SetReadDeadline(time.Now()) // wakes a reader blocked on an idle connection
}

// fail closes the connection at once, logging the first cause.
func (c *conn) fail(err error) {
	c.failOnce.Do(func() {
		c.logClose(err)
		c.cancel(err)
		c.nc.Close()
	})
}

// logClose logs why the connection closes: at Warn when the peer or a handler misbehaved,
// at Debug when it simply went away.
func (c *conn) logClose(err error) {
	switch {
	case errors.Is(err, errBadRequest):
		c.log.Warn("wire: bad request, closing connection", "err", err)
	case errors.Is(err, errConnClosed), errors.Is(err, ErrServerClosed), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("wire: connection closed", "err", err)
	default:
		c.log.Warn("wire: closing connection", "err", err)
	}
}

// readLoop reads and dispatches requests until an error or a drain.
func (c *conn) readLoop() error {
	br := bufio.NewReader(c.nc)
	limit := c.srv.maxRequestBytes()
	for !c.draining.Load() {
		frame, err := readFrame(br, limit)
		if err != nil {
			return fmt.Errorf("wire: read request from %s: %w", c.nc.RemoteAddr(), err)
		}
		if err := c.acquire(); err != nil {
			return err
		}
		if err := c.dispatch(frame); err != nil {
			return fmt.Errorf("wire: request from %s: %w", c.nc.RemoteAddr(), err)
		}
	}
	return nil
}

// acquire waits for a read-ahead token, or for the connection to fail.
func (c *conn) acquire() error {
	select {
	case c.tokens <- struct{}{}:
		return nil
	case <-c.ctx.Done():
		return context.Cause(c.ctx)
	}
}

// dispatch decodes one request frame and starts its handler.
func (c *conn) dispatch(frame []byte) error {
	h, rest, err := parseRequestHeader(frame)
	if err != nil {
		return err
	}
	ctx, done := c.srv.observe(c.ctx, h)
	res := &result{corr: h.CorrelationID, bytesIn: 4 + len(frame), done: done}
	c.order(res, h.ClientID)
	body, err := decodeBody(h, rest, c.versions)
	switch {
	case h.Key == apiVersionsKey && errors.Is(err, errUnsupportedVersion):
		c.results <- c.answerUnsupportedAPIVersions(res, err)
		return nil
	case err != nil:
		done(res.bytesIn, 0, err)
		return err
	}
	req := &Request{Header: h, Body: body, RemoteAddr: c.nc.RemoteAddr()}
	var after <-chan struct{}
	var handled chan struct{}
	if res.ordered {
		after, handled = c.lastDone, make(chan struct{})
		c.lastDone = handled
	}
	c.handlers.Add(1)
	go c.handle(ctx, req, res, after, handled)
	return nil
}

// order places res among the connection's answers. A connection turns out-of-order for
// good the first time its client sends OutOfOrderClientID; answers to requests read
// before then keep their order among themselves.
func (c *conn) order(res *result, clientID string) {
	if clientID == OutOfOrderClientID {
		c.outOfOrder = true
	}
	if !c.outOfOrder {
		res.ordered, res.seq = true, c.nextSeq
		c.nextSeq++
	}
}

// answerUnsupportedAPIVersions answers an ApiVersions request newer than the server at
// version 0 rather than closing the connection (KIP-511), so the client can retry lower.
func (c *conn) answerUnsupportedAPIVersions(res *result, why error) *result {
	c.log.Debug("wire: answering ApiVersions with UNSUPPORTED_VERSION", "err", why)
	res.frame, res.err = appendResponse(nil, res.corr, unsupportedAPIVersions(c.versions))
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
	resp, err := c.callHandler(ctx, req)
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
	c.results <- res
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

// write writes one answer, or drops it once the connection has failed.
func (c *conn) write(bw *bufio.Writer, res *result) {
	if err := context.Cause(c.ctx); err != nil {
		c.finish(res, 0, err)
		return
	}
	if res.spliced != nil {
		if err := res.spliced.writeTo(bw, c.nc); err != nil {
			c.fail(fmt.Errorf("wire: write response to %s: %w", c.nc.RemoteAddr(), err))
			c.finish(res, 0, err)
			return
		}
		c.finish(res, res.spliced.size, nil)
		return
	}
	if _, err := bw.Write(res.frame); err != nil {
		c.fail(fmt.Errorf("wire: write response to %s: %w", c.nc.RemoteAddr(), err))
		c.finish(res, 0, err)
		return
	}
	c.finish(res, len(res.frame), nil)
}

func (c *conn) flush(bw *bufio.Writer) {
	if bw.Buffered() == 0 || c.ctx.Err() != nil {
		return
	}
	if err := bw.Flush(); err != nil {
		c.fail(fmt.Errorf("wire: write response to %s: %w", c.nc.RemoteAddr(), err))
	}
}

// finish reports a written or dropped answer, releases its files, and frees its read-ahead
// token.
func (c *conn) finish(res *result, bytesOut int, err error) {
	if res.release != nil {
		res.release()
	}
	res.done(res.bytesIn, bytesOut, err)
	<-c.tokens
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
