package wire

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// spliceFile returns an open temp file of n random bytes, and the bytes.
func spliceFile(t testing.TB, n int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "segment.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// splicedFetch is a Fetch response with one partition of topic per entry of ranges, each
// partition's RecordBatches sent from its ranges.
func splicedFetch(topic string, ranges [][]FileRange, release func()) *Spliced {
	resp := kmsg.NewPtrFetchResponse()
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = topic
	for i := range ranges {
		p := kmsg.NewFetchResponseTopicPartition()
		p.Partition = int32(i)
		p.HighWatermark = int64(1000 + i)
		p.RecordBatches = Placeholder(i)
		rt.Partitions = append(rt.Partitions, p)
	}
	resp.Topics = append(resp.Topics, rt)
	return &Spliced{Response: resp, Ranges: ranges, Release: release}
}

// wantBatches is what each partition's RecordBatches must hold: its ranges' bytes.
func wantBatches(data []byte, ranges [][]FileRange) [][]byte {
	var want [][]byte
	for _, rs := range ranges {
		b := []byte{} // empty, not null
		for _, r := range rs {
			b = append(b, data[r.Offset:r.Offset+r.Length]...)
		}
		want = append(want, b)
	}
	return want
}

func checkFetch(t *testing.T, resp kmsg.Response, topic string, want [][]byte) {
	t.Helper()
	fr := resp.(*kmsg.FetchResponse)
	if len(fr.Topics) != 1 || fr.Topics[0].Topic != topic || len(fr.Topics[0].Partitions) != len(want) {
		t.Fatalf("fetch response topics %+v, want %s with %d partitions", fr.Topics, topic, len(want))
	}
	for i, p := range fr.Topics[0].Partitions {
		if p.Partition != int32(i) || p.HighWatermark != int64(1000+i) {
			t.Fatalf("partition %d: got partition %d hwm %d", i, p.Partition, p.HighWatermark)
		}
		if !bytes.Equal(p.RecordBatches, want[i]) {
			t.Fatalf("partition %d: %d record bytes differ from the %d file bytes", i, len(p.RecordBatches), len(want[i]))
		}
	}
}

func fetchRequest(version int16, topic string, partitions int) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(version)
	req.ReplicaID = -1
	req.MaxBytes = 1 << 30
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for i := range partitions {
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = int32(i)
		p.PartitionMaxBytes = 1 << 30
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// onlyFetchVersion serves every key as usual but Fetch at version v only, so that kgo
// asks at v.
func onlyFetchVersion(v int16) func(int16) (int16, int16, bool) {
	return func(key int16) (int16, int16, bool) {
		if key == 1 {
			return v, v, true
		}
		return clampVersions(nil)(key)
	}
}

// releaseCounter counts Release calls and lets tests wait for them.
type releaseCounter struct {
	n       atomic.Int32
	changed chan struct{}
}

func newReleaseCounter() *releaseCounter { return &releaseCounter{changed: make(chan struct{}, 1000)} }

func (rc *releaseCounter) release() {
	rc.n.Add(1)
	rc.changed <- struct{}{}
}

// waitFor waits until Release was called n times, then checks it is not called again soon.
func (rc *releaseCounter) waitFor(t *testing.T, n int32) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for rc.n.Load() < n {
		select {
		case <-rc.changed:
		case <-deadline:
			t.Fatalf("Release called %d times, want %d", rc.n.Load(), n)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if got := rc.n.Load(); got != n {
		t.Fatalf("Release called %d times, want %d", got, n)
	}
}

// spliceCases are the shapes of file ranges the end-to-end tests send, over a file of
// 300000 bytes: big enough for multi-byte uvarint lengths and several socket writes.
var spliceCases = []struct {
	name   string
	ranges [][]FileRange // File is filled in by the test
}{
	{"one partition", [][]FileRange{{{Offset: 0, Length: 300000}}}},
	{"several partitions", [][]FileRange{
		{{Offset: 10, Length: 1000}},
		{{Offset: 5000, Length: 100}},
		{{Offset: 100000, Length: 150000}},
	}},
	{"empty", [][]FileRange{{}, {{Offset: 7, Length: 0}}, {{Offset: 1, Length: 1}}}},
	{"several ranges per field", [][]FileRange{
		{{Offset: 0, Length: 10}, {Offset: 20000, Length: 70000}, {Offset: 0, Length: 0}, {Offset: 299990, Length: 10}},
		{{Offset: 3, Length: 127}, {Offset: 3, Length: 127}},
	}},
}

func withFile(f *os.File, ranges [][]FileRange) [][]FileRange {
	out := make([][]FileRange, len(ranges))
	for i, rs := range ranges {
		for _, r := range rs {
			r.File = f
			out[i] = append(out[i], r)
		}
	}
	return out
}

// End to end over loopback TCP: kgo and wire.Client both decode a Spliced Fetch response,
// flexible (v12) and not (v4), with zero-copy on and off, and its record bytes are the
// file's. With zero-copy on, sendfile moved them; Release is called once per response.
func TestSplicedFetch(t *testing.T) {
	f, data := spliceFile(t, 300000)
	for _, zeroCopy := range []bool{true, false} {
		for _, version := range []int16{4, 12} {
			for _, tc := range spliceCases {
				name := tc.name + "/v" + itoa(int(version))
				if zeroCopy {
					name = "zerocopy/" + name
				}
				t.Run(name, func(t *testing.T) {
					ranges := withFile(f, tc.ranges)
					want := wantBatches(data, ranges)
					var total int64
					for _, rs := range ranges {
						for _, r := range rs {
							total += r.Length
						}
					}
					rel := newReleaseCounter()
					versions := onlyFetchVersion(version)
					h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
						switch req.Body.(type) {
						case *kmsg.FetchRequest:
							return splicedFetch("t", ranges, rel.release), nil
						case *kmsg.ApiVersionsRequest: // tell kgo which Fetch version to use
							resp := unsupportedAPIVersions(clampVersions(versions))
							resp.ErrorCode = 0
							return resp, nil
						}
						return echoHandler(ctx, req)
					}
					addr := startServer(t, &Server{Handler: HandlerFunc(h), ZeroCopy: zeroCopy, Versions: versions})
					before := sendfileBytes.Load()

					resp, err := newKgo(t, addr).Request(t.Context(), fetchRequest(version, "t", len(ranges)))
					if err != nil {
						t.Fatal(err)
					}
					if resp.GetVersion() != version {
						t.Fatalf("kgo fetched at v%d, want v%d", resp.GetVersion(), version)
					}
					checkFetch(t, resp, "t", want)

					c, err := Dial(t.Context(), addr, ClientOptions{})
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					resp, err = c.Do(t.Context(), fetchRequest(version, "t", len(ranges)))
					if err != nil {
						t.Fatal(err)
					}
					checkFetch(t, resp, "t", want)
					rel.waitFor(t, 2)

					sent := sendfileBytes.Load() - before
					if zeroCopy && sent != 2*total || !zeroCopy && sent != 0 {
						t.Fatalf("sendfile sent %d bytes, want %d (zero-copy %v)", sent, 2*total, zeroCopy)
					}
					// The file was read at explicit offsets: its position, which other
					// readers may share, did not move.
					if pos, err := f.Seek(0, io.SeekCurrent); err != nil || pos != 0 {
						t.Fatalf("file position %d (%v) after serving, want 0", pos, err)
					}
				})
			}
		}
	}
}

// A Spliced answer pipelined between ordinary ones keeps its place, on an ordinary
// connection and (the file bytes leave whole, in the middle of a frame) on an
// out-of-order one.
func TestSplicedOrder(t *testing.T) {
	f, data := spliceFile(t, 300000)
	ranges := withFile(f, spliceCases[3].ranges)
	rel := newReleaseCounter()
	h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
		if _, ok := req.Body.(*kmsg.FetchRequest); ok {
			time.Sleep(50 * time.Millisecond) // ready after the metadata answer behind it
			return splicedFetch("t", ranges, rel.release), nil
		}
		return echoHandler(ctx, req)
	}
	addr := startServer(t, &Server{Handler: HandlerFunc(h), ZeroCopy: true})
	rc := dialRaw(t, addr)
	reqs := []kmsg.Request{
		metadataRequest(1, sleepTopic(100*time.Millisecond)),
		fetchRequest(12, "t", len(ranges)),
		metadataRequest(1, "b"),
		fetchRequest(4, "t", len(ranges)),
		metadataRequest(1, "c"),
	}
	for i, req := range reqs {
		rc.send("ordinary", int32(i), req)
	}
	for i, req := range reqs {
		id, payload := rc.recv()
		if id != int32(i) {
			t.Fatalf("answer %d has correlation id %d", i, id)
		}
		resp, err := decodeResponse(payload, req)
		if err != nil {
			t.Fatal(err)
		}
		switch req := req.(type) {
		case *kmsg.FetchRequest:
			checkFetch(t, resp, "t", wantBatches(data, ranges))
		case *kmsg.MetadataRequest:
			if got := topicNames(resp.(*kmsg.MetadataResponse)); len(got) != 1 || got[0] != *req.Topics[0].Topic {
				t.Fatalf("answer %d for topics %v", i, got)
			}
		}
	}
	rel.waitFor(t, 2)

	// Out of order: every answer arrives whole, whatever the order.
	c, err := Dial(t.Context(), addr, ClientOptions{Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			resp, err := c.Do(t.Context(), fetchRequest(12, "t", len(ranges)))
			if err != nil {
				t.Error(err)
				return
			}
			fr := resp.(*kmsg.FetchResponse)
			for i, p := range fr.Topics[0].Partitions {
				if !bytes.Equal(p.RecordBatches, wantBatches(data, ranges)[i]) {
					t.Errorf("partition %d: record bytes differ", i)
				}
			}
		})
		wg.Go(func() {
			if _, err := c.Do(t.Context(), metadataRequest(1, "x")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	rel.waitFor(t, 10)
}

// pipeListener serves net.Pipe connections, which sendfile cannot write to.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// Over a connection that is not TCP, zero-copy falls back to copying the file bytes into
// the frame.
func TestSplicedPipeFallback(t *testing.T) {
	f, data := spliceFile(t, 300000)
	rel := newReleaseCounter()
	h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
		if _, ok := req.Body.(*kmsg.FetchRequest); ok {
			return splicedFetch("t", withFile(f, spliceCases[1].ranges), rel.release), nil
		}
		return echoHandler(ctx, req)
	}
	s := &Server{Handler: HandlerFunc(h), ZeroCopy: true, Logger: testLogger(t)}
	ln := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	}()
	c := newClient("pipe", ln.dial(), ClientOptions{})
	defer c.Close()

	before := sendfileBytes.Load()
	for _, v := range []int16{4, 12} {
		resp, err := c.Do(t.Context(), fetchRequest(v, "t", 3))
		if err != nil {
			t.Fatal(err)
		}
		checkFetch(t, resp, "t", wantBatches(data, withFile(f, spliceCases[1].ranges)))
	}
	rel.waitFor(t, 2)
	if sent := sendfileBytes.Load() - before; sent != 0 {
		t.Fatalf("sendfile sent %d bytes over a pipe", sent)
	}
}

// Release is called exactly once however the response ends: written, dropped because the
// client went away first, cut off mid-sendfile, after the handler also returned an error,
// when malformed, and around Shutdown and Close.
func TestSplicedRelease(t *testing.T) {
	f, _ := spliceFile(t, 1<<20)
	whole := []FileRange{{File: f, Offset: 0, Length: 1 << 20}}
	big := make([]FileRange, 32) // 32 MiB: more than the socket buffers hold
	for i := range big {
		big[i] = whole[0]
	}

	for _, zeroCopy := range []bool{true, false} {
		prefix := "copy/"
		if zeroCopy {
			prefix = "zerocopy/"
		}
		// The client hangs up while the handler runs: the answer is dropped.
		t.Run(prefix+"client gone", func(t *testing.T) {
			rel := newReleaseCounter()
			started := make(chan struct{})
			h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
				close(started)
				<-ctx.Done()
				return splicedFetch("t", [][]FileRange{whole}, rel.release), nil
			}
			addr := startServer(t, &Server{Handler: HandlerFunc(h), ZeroCopy: zeroCopy})
			rc := dialRaw(t, addr)
			rc.send("c", 1, fetchRequest(4, "t", 1))
			<-started
			rc.nc.Close()
			rel.waitFor(t, 1)
		})

		// The client stops reading and hangs up in the middle of a 32 MiB answer.
		t.Run(prefix+"write fails", func(t *testing.T) {
			rel := newReleaseCounter()
			var written atomic.Int64
			h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
				return splicedFetch("t", [][]FileRange{big}, rel.release), nil
			}
			s := &Server{Handler: HandlerFunc(h), ZeroCopy: zeroCopy,
				Observe: func(ctx context.Context, _ *Request) (context.Context, func(int, int, error)) {
					return ctx, func(_, out int, _ error) { written.Store(int64(out)) }
				}}
			addr := startServer(t, s)
			rc := dialRaw(t, addr)
			rc.send("c", 1, fetchRequest(12, "t", 1))
			rc.recvSome(1 << 16)
			rc.nc.Close() // unread data: the kernel resets the connection
			rel.waitFor(t, 1)
			if n := written.Load(); n != 0 {
				t.Fatalf("Observe saw %d bytes written, want 0 for a failed write", n)
			}
		})

		// The handler fails but returns its Spliced answer too.
		t.Run(prefix+"handler error", func(t *testing.T) {
			rel := newReleaseCounter()
			h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
				return splicedFetch("t", [][]FileRange{whole}, rel.release), errors.New("boom")
			}
			addr := startServer(t, &Server{Handler: HandlerFunc(h), ZeroCopy: zeroCopy})
			rc := dialRaw(t, addr)
			rc.send("c", 1, fetchRequest(4, "t", 1))
			rc.expectClosed()
			rel.waitFor(t, 1)
		})

		// A placeholder is missing from the response: the connection closes.
		t.Run(prefix+"malformed", func(t *testing.T) {
			rel := newReleaseCounter()
			h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
				sp := splicedFetch("t", [][]FileRange{whole, whole}, rel.release)
				sp.Response.(*kmsg.FetchResponse).Topics[0].Partitions[1].RecordBatches = nil
				return sp, nil
			}
			addr := startServer(t, &Server{Handler: HandlerFunc(h), ZeroCopy: zeroCopy})
			rc := dialRaw(t, addr)
			rc.send("c", 1, fetchRequest(4, "t", 1))
			rc.expectClosed()
			rel.waitFor(t, 1)
		})

		// Shutdown lets the answer being prepared go out whole, then releases it.
		t.Run(prefix+"shutdown", func(t *testing.T) {
			rel := newReleaseCounter()
			started, proceed := make(chan struct{}), make(chan struct{})
			h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
				close(started)
				<-proceed
				return splicedFetch("t", [][]FileRange{big}, rel.release), nil
			}
			s := &Server{Handler: HandlerFunc(h), ZeroCopy: zeroCopy}
			addr := startServer(t, s)
			c, err := Dial(t.Context(), addr, ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			answered := make(chan error, 1)
			go func() {
				resp, err := c.Do(t.Context(), fetchRequest(4, "t", 1))
				if err == nil && len(resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches) != 32<<20 {
					err = errors.New("short answer")
				}
				answered <- err
			}()
			<-started
			shut := make(chan error, 1)
			go func() { shut <- s.Shutdown(t.Context()) }()
			time.Sleep(20 * time.Millisecond)
			close(proceed)
			if err := <-answered; err != nil {
				t.Fatal(err)
			}
			if err := <-shut; err != nil {
				t.Fatal(err)
			}
			rel.waitFor(t, 1)
		})

		// Close drops the answer of a handler still running.
		t.Run(prefix+"close", func(t *testing.T) {
			rel := newReleaseCounter()
			started := make(chan struct{})
			h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
				close(started)
				<-ctx.Done()
				return splicedFetch("t", [][]FileRange{whole}, rel.release), nil
			}
			s := &Server{Handler: HandlerFunc(h), ZeroCopy: zeroCopy}
			addr := startServer(t, s)
			rc := dialRaw(t, addr)
			rc.send("c", 1, fetchRequest(4, "t", 1))
			<-started
			s.Close()
			rc.expectClosed()
			rel.waitFor(t, 1)
		})
	}
}

// recvSome reads n bytes of whatever the server sent.
func (r *rawConn) recvSome(n int) {
	r.t.Helper()
	if _, err := r.br.Read(make([]byte, n)); err != nil {
		r.t.Fatal(err)
	}
}

// spliceFrame produces, once flattened, exactly the frame kmsg encodes with the file bytes
// in place, including lengths whose uvarint takes 1, 2 and 3 bytes.
func TestSpliceFrameMatchesEncoding(t *testing.T) {
	f, data := spliceFile(t, 100000)
	ranges := withFile(f, [][]FileRange{
		{},
		{{Offset: 1, Length: 126}}, // uvarint(127) is one byte
		{{Offset: 2, Length: 127}}, // uvarint(128) is two
		{{Offset: 0, Length: 20000}, {Offset: 30000, Length: 0}, {Offset: 50000, Length: 50000}}, // three
		{{Offset: 5, Length: 20}}, // as long as a marker
	})
	for _, v := range []int16{0, 4, 11, 12, 16} {
		sp := splicedFetch("t", ranges, nil)
		sp.SetVersion(v)
		frame, err := appendResponse(nil, 7, sp)
		if err != nil {
			t.Fatal(err)
		}
		sf, err := spliceFrame(frame, sp)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		got, err := sf.flatten()
		if err != nil {
			t.Fatal(err)
		}
		plain := splicedFetch("t", ranges, nil).Response.(*kmsg.FetchResponse)
		plain.SetVersion(v)
		for i, b := range wantBatches(data, ranges) {
			plain.Topics[0].Partitions[i].RecordBatches = b
		}
		want, err := appendResponse(nil, 7, plain)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || sf.size != len(want) {
			t.Fatalf("v%d: spliced frame of %d bytes (size %d) differs from the %d-byte encoding", v, len(got), sf.size, len(want))
		}
	}
}

// Placeholders that are missing, repeated, unknown or not a whole field are refused.
func TestSpliceFrameErrors(t *testing.T) {
	f, _ := spliceFile(t, 100)
	one := []FileRange{{File: f, Offset: 0, Length: 10}}
	for _, tc := range []struct {
		name   string
		edit   func(*kmsg.FetchResponse)
		ranges [][]FileRange
	}{
		{"missing", func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[1].RecordBatches = []byte("x") }, [][]FileRange{one, one}},
		{"twice", func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[1].RecordBatches = Placeholder(0) }, [][]FileRange{one, one}},
		{"unknown index", func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].RecordBatches = Placeholder(3) }, [][]FileRange{one}},
		{"inside a field", func(r *kmsg.FetchResponse) {
			r.Topics[0].Partitions[0].RecordBatches = append([]byte("abc"), Placeholder(0)...)
		}, [][]FileRange{one}},
		{"no file", nil, [][]FileRange{{{Length: 1}}}},
		{"negative", nil, [][]FileRange{{{File: f, Offset: -1, Length: 1}}}},
		{"too long", nil, [][]FileRange{{{File: f, Length: 1 << 30}, {File: f, Length: 1 << 30}}}},
	} {
		for _, v := range []int16{4, 12} {
			sp := splicedFetch("t", tc.ranges, nil)
			if tc.edit != nil {
				tc.edit(sp.Response.(*kmsg.FetchResponse))
			}
			sp.SetVersion(v)
			frame, err := appendResponse(nil, 1, sp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := spliceFrame(frame, sp); err == nil {
				t.Errorf("%s v%d: no error", tc.name, v)
			}
		}
	}
}

// A file shorter than its range fails the copy rather than sending a short frame.
func TestSpliceFrameShortFile(t *testing.T) {
	f, _ := spliceFile(t, 100)
	sp := splicedFetch("t", [][]FileRange{{{File: f, Offset: 50, Length: 51}}}, nil)
	sp.SetVersion(4)
	frame, err := appendResponse(nil, 1, sp)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := spliceFrame(frame, sp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sf.flatten(); err == nil {
		t.Fatal("flatten of a range past the end of its file succeeded")
	}
}
