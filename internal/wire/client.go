package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrClientClosed is the cause of the errors a Client or Pool returns after Close.
var ErrClientClosed = errors.New("wire: client closed")

const defaultDialTimeout = 10 * time.Second

// writeTimeout bounds the writing of one request: a server that takes none of it for
// that long is stuck, and the connection is broken so that a Pool dials another. It is
// as long as a Server waits for a peer to take an answer (DefaultIdleTimeout), not as
// short as it waits for a request to arrive: a server busy with as many long polls as
// it reads ahead stops reading, by design, for as long as the polls wait. Callers never
// wait that long: they leave the line when their context ends.
const writeTimeout = DefaultIdleTimeout

// ClientOptions configure a Client or a Pool's clients.
type ClientOptions struct {
	ClientID string // sent in every request header
	// Internal opens the connection with the handshake that makes it Strait-internal
	// (see doc.go): the server answers each request as soon as it is ready and reads
	// many ahead, and every flexible request carries the Origin of the context given to
	// Do in its header. For connections between Strait processes only.
	Internal bool
	// TLS, when set, makes each connection TLS with the config it returns (called per
	// dial, so that reloaded certificates are used). A config without ServerName
	// verifies the host of the address dialed.
	TLS              func() (*tls.Config, error)
	DialTimeout      time.Duration // 0 = 10s
	MaxResponseBytes int32         // 0 = DefaultMaxRequestBytes
	Logger           *slog.Logger
}

// Client pipelines requests to one address over one TCP connection.
//
// Requests are written in the order their callers came, by one writer goroutine: a
// caller waits in line, under its context, and may leave the line before its turn; one
// that sends a large request delays those behind it by that request only. One reader
// goroutine hands each response to the call waiting for its correlation id. The caller
// decodes its own response, so decoding runs in parallel.
type Client struct {
	addr     string
	nc       net.Conn
	clientID string
	internal bool
	log      *slog.Logger
	maxIn    int32
	nextID   atomic.Int32
	queue    chan *call    // to the writer, first come first served
	broken   chan struct{} // closed once the connection fails or closes
	read     chan struct{} // closed when the reader goroutine has returned
	written  chan struct{} // closed when the writer goroutine has returned
	// out is the buffered socket writer, held by whoever writes: the writer goroutine,
	// or a caller of a small request that found it idle (see do).
	out struct {
		sync.Mutex
		bw *bufio.Writer
	}

	mu struct {
		sync.Mutex
		err     error // set once: the connection is broken or closed
		pending map[int32]*call
	}
}

// call is one request: in line for the writer, then waiting for its answer.
type call struct {
	frame  []byte
	answer bool       // a response is expected (not a produce with acks=0)
	sent   bool       // the writer began writing it; under Client.mu
	reply  chan reply // buffered: whoever replies never blocks
}

// reply is what a waiting call is handed: a response payload, or why there is none.
type reply struct {
	payload []byte
	err     error
	notSent bool // err came before any byte of the request was written
}

// Dial connects to addr, and with opts.Internal declares the connection internal and
// waits for the server's answer. ctx bounds the dial and that handshake only. Its
// errors satisfy NotSent.
func Dial(ctx context.Context, addr string, opts ClientOptions) (*Client, error) {
	d := net.Dialer{Timeout: opts.DialTimeout}
	if d.Timeout <= 0 {
		d.Timeout = defaultDialTimeout
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &notSentError{fmt.Errorf("wire: dial %s: %w", addr, err)}
	}
	if opts.TLS != nil {
		if nc, err = clientTLS(ctx, nc, addr, opts.TLS); err != nil {
			return nil, &notSentError{err}
		}
	}
	c := newClient(addr, nc, opts)
	if opts.Internal {
		if err := c.handshake(ctx); err != nil {
			c.Close()
			return nil, &notSentError{fmt.Errorf("wire: internal handshake with %s: %w", addr, err)}
		}
	}
	return c, nil
}

// clientTLS runs a TLS handshake over nc, closing nc if it fails.
func clientTLS(ctx context.Context, nc net.Conn, addr string, config func() (*tls.Config, error)) (net.Conn, error) {
	cfg, err := config()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("wire: TLS to %s: %w", addr, err)
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("wire: TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// newClient starts serving calls over nc.
func newClient(addr string, nc net.Conn, opts ClientOptions) *Client {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		addr:     addr,
		nc:       nc,
		clientID: opts.ClientID,
		internal: opts.Internal,
		log:      log.With("addr", addr),
		maxIn:    opts.MaxResponseBytes,
		queue:    make(chan *call),
		broken:   make(chan struct{}),
		read:     make(chan struct{}),
		written:  make(chan struct{}),
	}
	if c.maxIn <= 0 {
		c.maxIn = DefaultMaxRequestBytes
	}
	c.mu.pending = make(map[int32]*call)
	c.out.bw = bufio.NewWriter(nc)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// The handshake's ApiVersions: version 3 is the first flexible one, whose header has
// tags; its client software fields are what KIP-511 checks.
const (
	handshakeVersion         = 3
	handshakeSoftwareName    = "strait-internal"
	handshakeSoftwareVersion = "1"
)

// handshake sends the ApiVersions request that declares the connection internal. A
// server that cannot read it (one that knows no flexible ApiVersions) keeps the
// connection ordinary: its answers then come in order, which the client, matching
// them by correlation id, takes as well.
func (c *Client) handshake(ctx context.Context) error {
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(handshakeVersion)
	req.ClientSoftwareName, req.ClientSoftwareVersion = handshakeSoftwareName, handshakeSoftwareVersion
	resp, err := c.do(ctx, req, true)
	if err != nil {
		return err
	}
	if code := resp.(*kmsg.ApiVersionsResponse).ErrorCode; code != 0 {
		c.log.Warn("wire: the server refused the internal handshake; its answers come in request order", "error_code", code)
	}
	return nil
}

// Do writes req (its version must already be set by the caller) and waits for the response,
// decoded into req.ResponseKind() at the same version. For a ProduceRequest with Acks==0 it
// returns (nil, nil) once written. ctx bounds the wait in line and for the answer; once
// the request is written, cancellation abandons the wait (the response is then read and
// dropped). Errors wrap their cause; after a connection error every pending and future
// Do fails and Err() is non-nil. NotSent tells the errors returned before any byte of
// req was written.
//
// On an internal connection, a flexible request carries the Origin ctx holds.
//
// One exception to "at the same version": an ApiVersions request newer than the server
// gets the server's version-0 UNSUPPORTED_VERSION answer (KIP-511), so its response has
// GetVersion() == 0 and ErrorCode 35.
func (c *Client) Do(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	return c.do(ctx, req, false)
}

func (c *Client) do(ctx context.Context, req kmsg.Request, declare bool) (kmsg.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, c.notSent(req, err)
	}
	var origin Origin
	if c.internal {
		origin, _ = OriginFrom(ctx)
	}
	id := c.nextID.Add(1)
	cl := &call{
		frame:  appendRequest(nil, req, id, c.clientID, declare, origin),
		answer: expectsResponse(req),
		reply:  make(chan reply, 1),
	}
	if cl.answer {
		if err := c.register(id, cl); err != nil {
			return nil, c.notSent(req, err)
		}
	}
	if len(cl.frame) <= directWriteMax && c.out.TryLock() {
		// Nobody is writing: write it now, sparing the request a hand-off to the writer
		// goroutine, a wake-up on the latency path. Only small requests, which the
		// socket takes at once: a caller cannot leave a write it is in, so a peer that
		// stops reading for directWriteTimeout breaks the connection instead.
		c.writeCall(cl, true, directWriteTimeout)
		c.out.Unlock()
	} else if err := c.enqueue(ctx, cl); err != nil {
		c.unregister(id)
		return nil, c.notSent(req, err)
	}
	return c.await(ctx, req, cl)
}

// A request written by its caller (see do): at most this big, and given this long.
const (
	directWriteMax     = 64 << 10
	directWriteTimeout = 5 * time.Second
)

// Err returns why the connection is unusable, or nil while it works.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

// Close closes the connection; pending calls fail with ErrClientClosed.
func (c *Client) Close() error {
	c.fail(ErrClientClosed)
	<-c.read
	<-c.written
	return nil
}

// expectsResponse is false only for a produce with acks=0, which Kafka never answers.
func expectsResponse(req kmsg.Request) bool {
	p, ok := req.(*kmsg.ProduceRequest)
	return !ok || p.Acks != 0
}

// register makes room for the response to correlation id id, unless the connection is
// already broken.
func (c *Client) register(id int32, cl *call) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.err != nil {
		return c.mu.err
	}
	c.mu.pending[id] = cl
	return nil
}

func (c *Client) unregister(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.mu.pending, id)
}

// enqueue waits for the writer to take cl. Callers wait in line: a channel's blocked
// senders are served in the order they came.
func (c *Client) enqueue(ctx context.Context, cl *call) error {
	select {
	case c.queue <- cl:
		return nil
	case <-c.broken:
		return c.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// await waits for the answer to cl, or for it to be written if none is expected, and
// decodes it.
func (c *Client) await(ctx context.Context, req kmsg.Request, cl *call) (kmsg.Response, error) {
	select {
	case r := <-cl.reply:
		switch {
		case r.err != nil && r.notSent:
			return nil, c.notSent(req, r.err)
		case r.err != nil:
			return nil, fmt.Errorf("wire: %s to %s: %w", kmsg.NameForKey(req.Key()), c.addr, r.err)
		case !cl.answer:
			return nil, nil
		}
		resp, err := decodeResponse(r.payload, req)
		if err != nil {
			return nil, fmt.Errorf("wire: %s from %s: %w", kmsg.NameForKey(req.Key()), c.addr, err)
		}
		return resp, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wire: %s to %s: %w", kmsg.NameForKey(req.Key()), c.addr, ctx.Err())
	}
}

// writeLoop writes the calls in the order they come, until the connection fails. It
// flushes only when no call waits, so that requests that arrive together leave in one
// write.
func (c *Client) writeLoop() {
	defer close(c.written)
	for {
		cl, ok := c.next()
		if !ok {
			return
		}
		c.out.Lock()
		c.writeCall(cl, false, writeTimeout)
		c.out.Unlock()
	}
}

// writeCall writes one call's frame, and with flush sends it on at once; c.out is held.
func (c *Client) writeCall(cl *call, flush bool, timeout time.Duration) {
	if !c.markSent(cl) {
		if !cl.answer { // a call with an answer was told by fail
			cl.reply <- reply{err: c.Err(), notSent: true}
		}
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.out.bw.Write(cl.frame)
	if err == nil && flush {
		err = c.out.bw.Flush()
	}
	if err != nil {
		c.fail(fmt.Errorf("wire: write request to %s: %w", c.addr, err))
	}
	if !cl.answer {
		cl.reply <- reply{err: err}
	}
}

// next returns the next call in line, flushing what was written before it waits.
func (c *Client) next() (*call, bool) {
	select {
	case cl := <-c.queue:
		return cl, true
	case <-c.broken:
		return nil, false
	default:
	}
	c.out.Lock()
	var err error
	if c.out.bw.Buffered() > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		err = c.out.bw.Flush()
	}
	c.out.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("wire: write request to %s: %w", c.addr, err))
		return nil, false
	}
	select {
	case cl := <-c.queue:
		return cl, true
	case <-c.broken:
		return nil, false
	}
}

// markSent records that the writer is about to write cl, unless the connection failed
// first. Under the lock fail takes, so fail tells each pending call rightly whether any
// of its bytes may have left.
func (c *Client) markSent(cl *call) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.err != nil {
		return false
	}
	cl.sent = true
	return true
}

// readLoop hands each response to its call until the connection fails.
func (c *Client) readLoop() {
	defer close(c.read)
	br := bufio.NewReader(c.nc)
	for {
		payload, err := readFrame(br, c.maxIn)
		if err != nil {
			c.fail(fmt.Errorf("wire: read response from %s: %w", c.addr, err))
			return
		}
		if err := c.deliver(payload); err != nil {
			c.fail(fmt.Errorf("wire: response from %s: %w", c.addr, err))
			return
		}
	}
}

// deliver hands payload to the call waiting for its correlation id.
func (c *Client) deliver(payload []byte) error {
	id, err := correlationID(payload)
	if err != nil {
		return err
	}
	c.mu.Lock()
	cl, ok := c.mu.pending[id]
	delete(c.mu.pending, id)
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: unexpected correlation id %d", errMalformed, id)
	}
	cl.reply <- reply{payload: payload}
	return nil
}

// fail breaks the connection for good: the first error is kept, the socket closed and
// every waiting call told, with whether its request was sent.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.err != nil {
		return
	}
	c.mu.err = err
	close(c.broken)
	if !errors.Is(err, ErrClientClosed) {
		c.log.Debug("wire: client connection broken", "err", err)
	}
	c.nc.Close()
	for id, cl := range c.mu.pending {
		cl.reply <- reply{err: err, notSent: !cl.sent}
		delete(c.mu.pending, id)
	}
}

// notSentError marks a request that failed before any byte of it was written.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// NotSent reports whether err, from Do or Dial of a Client or a Pool, came before any
// byte of the request was written: a dial or handshake that failed, a connection broken
// or closed before the request's turn, a context that ended while it waited in line.
// The server cannot have seen such a request, so it may be sent again whatever it does.
// When NotSent is false the request may or may not have reached the server.
func NotSent(err error) bool {
	var ns *notSentError
	return errors.As(err, &ns)
}

func (c *Client) notSent(req kmsg.Request, err error) error {
	return &notSentError{fmt.Errorf("wire: %s to %s not sent: %w", kmsg.NameForKey(req.Key()), c.addr, err)}
}
