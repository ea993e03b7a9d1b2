//go:build unix

package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkSplicedWrite serves Fetch responses of 1 MiB of record bytes from a file over
// loopback TCP to a client that reads and discards them, pipelining requests:
//   - zerocopy: a Spliced response with ZeroCopy on, sent with sendfile;
//   - copy: the same Spliced response with ZeroCopy off, copied into the frame;
//   - plain: what a handler without Spliced does, reading the bytes into RecordBatches.
//
// cpu-ns/op is the process's user+system CPU time per response, client included.
func BenchmarkSplicedWrite(b *testing.B) {
	const size = 1 << 20
	f, _ := spliceFile(b, size)
	ranges := [][]FileRange{{{File: f, Offset: 0, Length: size}}}
	spliced := func(ctx context.Context, req *Request) (kmsg.Response, error) {
		return splicedFetch("t", ranges, nil), nil
	}
	plain := func(ctx context.Context, req *Request) (kmsg.Response, error) {
		sp := splicedFetch("t", ranges, nil)
		buf := make([]byte, size)
		if _, err := f.ReadAt(buf, 0); err != nil {
			return nil, err
		}
		resp := sp.Response.(*kmsg.FetchResponse)
		resp.Topics[0].Partitions[0].RecordBatches = buf
		return resp, nil
	}
	for _, bc := range []struct {
		name     string
		handler  HandlerFunc
		zeroCopy bool
	}{
		{"zerocopy", spliced, true},
		{"copy", spliced, false},
		{"plain", plain, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchFetches(b, &Server{Handler: bc.handler, ZeroCopy: bc.zeroCopy}, size)
		})
	}
}

// benchFetches sends b.N Fetch requests to s on one connection and reads the answers,
// each of which carries recordBytes of records.
func benchFetches(b *testing.B, s *Server, recordBytes int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Minute))
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench")).AppendRequest(nil, fetchRequest(12, "t", 1), 1)
	buf := make([]byte, 256<<10)

	b.SetBytes(recordBytes)
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	sent := make(chan error, 1)
	go func() {
		for range b.N {
			if _, err := nc.Write(frame); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for range b.N {
		if _, err := io.ReadFull(nc, buf[:4]); err != nil {
			b.Fatal(err)
		}
		n := int64(binary.BigEndian.Uint32(buf))
		if n < recordBytes {
			b.Fatalf("answer of %d bytes", n)
		}
		for n > 0 {
			m, err := io.ReadFull(nc, buf[:min(n, int64(len(buf)))])
			if err != nil {
				b.Fatal(err)
			}
			n -= int64(m)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	if err := <-sent; err != nil && !errors.Is(err, net.ErrClosed) {
		b.Fatal(err)
	}
}

// cpuTime is the user and system CPU time the process has used, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
