package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// NotSent reports whether a failed Do certainly did not reach the server: it failed
// before any byte of the request was written (the dial failed, or the connection was
// already broken). A caller may send such a request again whatever it does; after any
// other failure the server may have received and applied it.
func NotSent(err error) bool {
	var ns notSent
	return errors.As(err, &ns)
}

// notSent marks an error returned before the request was written.
type notSent struct{ err error }

func (e notSent) Error() string { return e.err.Error() }
func (e notSent) Unwrap() error { return e.err }

// ErrClientClosed is the cause of the errors a Client or Pool returns after Close.
var ErrClientClosed = errors.New("wire: client closed")

const defaultDialTimeout = 10 * time.Second

// ClientOptions configure a Client or a Pool's clients.
type ClientOptions struct {
	ClientID         string        // sent in every request header
	OutOfOrder       bool          // send OutOfOrderClientID instead of ClientID, match responses by correlation id
	DialTimeout      time.Duration // 0 = 10s
	MaxResponseBytes int32         // 0 = DefaultMaxRequestBytes
	Logger           *slog.Logger
}

// Client pipelines requests to one address over one TCP connection.
//
// Requests are written as they come, by whichever caller holds the write lock, and one
// reader goroutine hands each response to the call waiting for its correlation id. The
// caller decodes its own response, so decoding runs in parallel.
type Client struct {
	addr   string
	nc     net.Conn
	format *kmsg.RequestFormatter
	log    *slog.Logger
	maxIn  int32
	nextID atomic.Int32
	read   chan struct{} // closed when the reader goroutine has returned

	// writers counts callers wanting the write lock; the last one flushes, so requests
	// that arrive together leave in one write.
	writers atomic.Int32
	wmu     struct {
		sync.Mutex
		bw *bufio.Writer
	}
	mu struct {
		sync.Mutex
		err     error // set once: the connection is broken or closed
		pending map[int32]chan reply
	}
}

// reply is what the reader hands a waiting call: a response payload or the connection's
// error.
type reply struct {
	payload []byte
	err     error
}

// Dial connects to addr. ctx bounds the dial only.
func Dial(ctx context.Context, addr string, opts ClientOptions) (*Client, error) {
	d := net.Dialer{Timeout: opts.DialTimeout}
	if d.Timeout <= 0 {
		d.Timeout = defaultDialTimeout
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, notSent{fmt.Errorf("wire: dial %s: %w", addr, err)}
	}
	c := newClient(addr, nc, opts)
	go c.readLoop()
	return c, nil
}

func newClient(addr string, nc net.Conn, opts ClientOptions) *Client {
	id := opts.ClientID
	if opts.OutOfOrder {
		id = OutOfOrderClientID
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		addr:   addr,
		nc:     nc,
		format: kmsg.NewRequestFormatter(kmsg.FormatterClientID(id)),
		log:    log.With("addr", addr),
		maxIn:  opts.MaxResponseBytes,
		read:   make(chan struct{}),
	}
	if c.maxIn <= 0 {
		c.maxIn = DefaultMaxRequestBytes
	}
	c.wmu.bw = bufio.NewWriter(nc)
	c.mu.pending = make(map[int32]chan reply)
	return c
}

// Do writes req (its version must already be set by the caller) and waits for the response,
// decoded into req.ResponseKind() at the same version. For a ProduceRequest with Acks==0 it
// returns (nil, nil) once written. ctx cancellation abandons the wait (the response is then
// read and dropped). Errors wrap their cause; after a connection error every pending and
// future Do fails and Err() is non-nil.
//
// One exception to "at the same version": an ApiVersions request newer than the server
// gets the server's version-0 UNSUPPORTED_VERSION answer (KIP-511), so its response has
// GetVersion() == 0 and ErrorCode 35.
func (c *Client) Do(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wire: %s to %s: %w", kmsg.NameForKey(req.Key()), c.addr, err)
	}
	id := c.nextID.Add(1)
	frame := c.format.AppendRequest(nil, req, id)
	if !expectsResponse(req) {
		return nil, c.write(frame)
	}
	wait, err := c.register(id)
	if err != nil {
		return nil, err
	}
	if err := c.write(frame); err != nil {
		return nil, err
	}
	return c.await(ctx, req, wait)
}

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
	return nil
}

// expectsResponse is false only for a produce with acks=0, which Kafka never answers.
func expectsResponse(req kmsg.Request) bool {
	p, ok := req.(*kmsg.ProduceRequest)
	return !ok || p.Acks != 0
}

// register makes room for the response to correlation id id, unless the connection is
// already broken.
func (c *Client) register(id int32) (chan reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.err != nil {
		return nil, notSent{c.mu.err}
	}
	wait := make(chan reply, 1) // the reader never blocks, even for an abandoned call
	c.mu.pending[id] = wait
	return wait, nil
}

// write writes one request frame. Callers queue on the write lock; the last in the queue
// flushes for everyone before it.
func (c *Client) write(frame []byte) error {
	c.writers.Add(1)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.wmu.bw.Write(frame)
	if c.writers.Add(-1) == 0 && err == nil {
		err = c.wmu.bw.Flush()
	}
	if err != nil {
		err = fmt.Errorf("wire: write request to %s: %w", c.addr, err)
		c.fail(err)
		return err
	}
	return c.Err() // the connection may have broken before this request went out
}

// await waits for the response to req and decodes it.
func (c *Client) await(ctx context.Context, req kmsg.Request, wait chan reply) (kmsg.Response, error) {
	select {
	case r := <-wait:
		if r.err != nil {
			return nil, r.err
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
	wait, ok := c.mu.pending[id]
	delete(c.mu.pending, id)
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: unexpected correlation id %d", errMalformed, id)
	}
	wait <- reply{payload: payload}
	return nil
}

// fail breaks the connection for good: the first error is kept, the socket closed and
// every waiting call told.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.err != nil {
		return
	}
	c.mu.err = err
	if !errors.Is(err, ErrClientClosed) {
		c.log.Debug("wire: client connection broken", "err", err)
	}
	c.nc.Close()
	for id, wait := range c.mu.pending {
		wait <- reply{err: err}
		delete(c.mu.pending, id)
	}
}
