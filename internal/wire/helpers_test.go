package wire

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// startServer serves s on a loopback port until the test ends, then checks that Serve
// returned ErrServerClosed.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.Logger == nil {
		s.Logger = testLogger(t)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// testLogger logs through t, so a failing test shows what the server saw.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// echoHandler answers the few APIs the tests use:
//   - ApiVersions with every key kmsg knows;
//   - Metadata with its request's topics echoed back, after sleeping for any topic named
//     "sleep:<duration>" (so tests control how long each request takes);
//   - Produce with its topics echoed back, or nothing for acks=0;
//   - anything else with an empty response of the right kind.
func echoHandler(ctx context.Context, req *Request) (kmsg.Response, error) {
	switch body := req.Body.(type) {
	case *kmsg.ApiVersionsRequest:
		return allAPIVersions(), nil
	case *kmsg.MetadataRequest:
		return echoMetadata(ctx, body)
	case *kmsg.ProduceRequest:
		return echoProduce(body), nil
	default:
		return req.Body.ResponseKind(), nil
	}
}

func allAPIVersions() *kmsg.ApiVersionsResponse {
	resp := unsupportedAPIVersions(clampVersions(nil))
	resp.ErrorCode = 0
	return resp
}

func echoMetadata(ctx context.Context, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := kmsg.NewPtrMetadataResponse()
	for _, rt := range req.Topics {
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		}
		if err := sleepFor(ctx, name); err != nil {
			return nil, err
		}
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = kmsg.StringPtr(name)
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

// sleepFor sleeps when name is "sleep:<duration>".
func sleepFor(ctx context.Context, name string) error {
	d, ok := strings.CutPrefix(name, "sleep:")
	if !ok {
		return nil
	}
	dur, err := time.ParseDuration(d)
	if err != nil {
		return err
	}
	select {
	case <-time.After(dur):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func echoProduce(req *kmsg.ProduceRequest) kmsg.Response {
	if req.Acks == 0 {
		return nil
	}
	resp := kmsg.NewPtrProduceResponse()
	for _, rt := range req.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func metadataRequest(version int16, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(version)
	for _, name := range topics {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, t)
	}
	return req
}

func produceRequest(version int16, acks int16, topic string) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = acks
	req.TimeoutMillis = 1000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = topic
	req.Topics = append(req.Topics, t)
	return req
}

func topicNames(resp *kmsg.MetadataResponse) []string {
	var names []string
	for _, t := range resp.Topics {
		names = append(names, *t.Topic)
	}
	return names
}

// rawConn is a hand-driven connection for tests that need to see or break the bytes.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// send writes req as a frame from clientID with correlation id corr.
func (r *rawConn) send(clientID string, corr int32, req kmsg.Request) {
	r.t.Helper()
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)).AppendRequest(nil, req, corr)
	r.write(frame)
}

// declareInternal sends the internal handshake, as a Client with Internal does, and
// reads its answer.
func (r *rawConn) declareInternal() {
	r.t.Helper()
	req := versioned(kmsg.NewPtrApiVersionsRequest(), handshakeVersion)
	req.ClientSoftwareName, req.ClientSoftwareVersion = handshakeSoftwareName, handshakeSoftwareVersion
	r.write(appendRequest(nil, req, 0, "raw", true, Origin{}))
	if id, _ := r.recv(); id != 0 {
		r.t.Fatalf("handshake answered with correlation id %d", id)
	}
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads one response frame and returns its correlation id and payload.
func (r *rawConn) recv() (int32, []byte) {
	r.t.Helper()
	payload, err := readFrame(r.br, DefaultMaxRequestBytes)
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	id, err := correlationID(payload)
	if err != nil {
		r.t.Fatal(err)
	}
	return id, payload
}

// expectClosed checks that the server closed the connection without answering.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := r.br.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		r.t.Fatalf("read %d bytes, err %v; want the connection closed", n, err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// sleepTopic names a Metadata topic that makes echoHandler sleep d.
func sleepTopic(d time.Duration) string { return "sleep:" + d.String() }

func itoa(i int) string { return strconv.Itoa(i) }
