//go:build linux

package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestHostileConnectionsKeepMemoryBounded is the Hardening issue's scenario against
// `strait dev` with short timeouts and a small memory budget: ten connections announce
// 100 MiB requests and send a few bytes, and one pipelines fetches of 8 MiB and never
// reads the answers. Memory follows what clients send, not what they announce: VmRSS,
// and the Go heap in use (which counts what was allocated even if never touched), stay
// far below the gigabyte announced. The slow connections are closed by the request
// read timeout, the unread one once it has taken nothing for the idle timeout, and an
// ordinary franz-go client produces and consumes all the while.
func TestHostileConnectionsKeepMemoryBounded(t *testing.T) {
	const (
		readTimeout   = 3 * time.Second
		idleTimeout   = 6 * time.Second
		announced     = 100 << 20
		announcers    = 10
		fetches       = 300
		recordBytes   = 128 << 10
		seedRecords   = 64 // 8 MiB: every fetch gets it all
		fetchBytes    = 8 << 20
		timeout       = 30 * time.Second
		memCeiling    = 150 << 20 // announced: 1000 MiB, and 300 answers of 8 MiB asked for
		closedByLimit = 20 * time.Second
	)
	p := StartDev(t, Args(
		"--request-read-timeout", readTimeout.String(),
		"--connections-max-idle", idleTimeout.String(),
		"--memory-budget", strconv.Itoa(32<<20),
		"--max-inflight-bytes-per-connection", strconv.Itoa(4<<20),
		// Garbage the collector may leave below its heap floor is not what clients hold;
		// a small floor keeps the ceiling about the latter.
		"--gc-min-heap", strconv.Itoa(32<<20),
	))
	pid := p.current().cmd.Process.Pid
	adm := p.Admin(t)
	createTopic(t, adm, "hostile", 1, timeout)
	createTopic(t, adm, "ordinary", 1, timeout)
	seeder := p.Client(t, kgo.DefaultProduceTopic("hostile"), kgo.ProducerBatchMaxBytes(1<<20))
	seed := make([]*kgo.Record, seedRecords)
	for i := range seed {
		seed[i] = &kgo.Record{Value: incompressible(recordBytes)}
	}
	produceAll(t, seeder, seed, timeout)
	t.Logf("VmRSS before: %d MiB", vmRSS(t, pid)>>20)

	var peak peakRSS
	stopSampling := peak.sample(pid)
	defer stopSampling()

	slow := make([]net.Conn, announcers)
	for i := range slow {
		slow[i] = dialKafka(t, p.Addr())
		hdr := binary.BigEndian.AppendUint32(nil, announced)
		if _, err := slow[i].Write(append(hdr, 0, 0, 0, 9, 0, 0, 0, 1)); err != nil { // Produce v9, a few bytes
			t.Fatal(err)
		}
	}
	greedy := dialKafka(t, p.Addr())
	greedy.(*net.TCPConn).SetReadBuffer(4 << 10)
	pipelineFetches(t, greedy, "hostile", fetchBytes, fetches)
	started := time.Now()
	time.Sleep(time.Second) // let the server read what it will
	if heap := heapInUse(t, p.AdminAddr()); heap > memCeiling {
		t.Fatalf("Go heap in use %d MiB, want under %d MiB", heap>>20, memCeiling>>20)
	}

	ordinary := p.Client(t, kgo.DefaultProduceTopic("ordinary"), kgo.ConsumeTopics("ordinary"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	recs := make([]*kgo.Record, 100)
	for i := range recs {
		recs[i] = &kgo.Record{Value: fmt.Appendf(nil, "ordinary-%d", i)}
	}
	produceAll(t, ordinary, recs, timeout)
	checkSameRecords(t, recs, consumeAll(t, ordinary, len(recs), timeout))
	if took := time.Since(started); took >= readTimeout {
		t.Logf("the ordinary client took %s, past the request read timeout: the hostile connections may have been closed already", took)
	}

	for i, c := range slow {
		if err := expectClosedBy(c, started.Add(readTimeout+closedByLimit)); err != nil {
			t.Fatalf("announcing connection %d: %v", i, err)
		}
	}
	if err := expectClosedBy(greedy, started.Add(idleTimeout+closedByLimit)); err != nil {
		t.Fatalf("connection that does not read: %v", err)
	}
	stopSampling()
	t.Logf("VmRSS peak while hostile: %d MiB", peak.max()>>20)
	if peak.max() > memCeiling {
		t.Fatalf("VmRSS reached %d MiB, want under %d MiB with %d MiB announced", peak.max()>>20, memCeiling>>20, announcers*announced>>20)
	}
	checkClosedMetric(t, p.AdminAddr(), "request_read_timeout", announcers)
	checkClosedMetric(t, p.AdminAddr(), "write_timeout", 1)
}

func dialKafka(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pipelineFetches writes n Fetch v4 requests for up to size bytes from offset 0 of
// topic's partition 0, without reading an answer.
func pipelineFetches(t *testing.T, c net.Conn, topic string, size int32, n int) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(4)
	req.ReplicaID = -1
	req.MaxBytes = 50 << 20
	req.MinBytes = 1
	part := kmsg.NewFetchRequestTopicPartition()
	part.PartitionMaxBytes = size
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	ft.Partitions = append(ft.Partitions, part)
	req.Topics = append(req.Topics, ft)
	format := kmsg.NewRequestFormatter(kmsg.FormatterClientID("greedy"))
	w := bufio.NewWriter(c)
	for i := range n {
		if _, err := w.Write(format.AppendRequest(nil, req, int32(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// expectClosedBy reads and drops what c receives until the server closes it, which must
// happen before deadline.
func expectClosedBy(c net.Conn, deadline time.Time) error {
	c.SetReadDeadline(deadline)
	buf := make([]byte, 64<<10)
	for {
		_, err := c.Read(buf)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), strings.Contains(err.Error(), "connection reset"):
			return nil
		default:
			return fmt.Errorf("still open at %s: %w", deadline.Format("15:04:05.000"), err)
		}
	}
}

// vmRSS returns the resident set size of process pid.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	rss, err := readVmRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	return rss
}

// readVmRSS reads the resident set size of process pid from /proc/<pid>/status.
func readVmRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS line %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// peakRSS keeps the largest VmRSS seen by sample.
type peakRSS struct {
	mu   sync.Mutex
	peak int64
}

func (p *peakRSS) max() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// sample reads pid's VmRSS every 50ms until the returned func is called (any number of
// times).
func (p *peakRSS) sample(pid int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			rss, _ := readVmRSS(pid) // a process gone is the harness's to report
			p.mu.Lock()
			p.peak = max(p.peak, rss)
			p.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// heapInUse returns the server's Go heap in use, from the admin server's /metrics.
func heapInUse(t *testing.T, admin string) int64 {
	t.Helper()
	v, ok := metricValue(t, admin, func(line string) bool { return strings.HasPrefix(line, "go_memstats_heap_inuse_bytes ") })
	if !ok {
		t.Fatal("no go_memstats_heap_inuse_bytes in /metrics")
	}
	return int64(v)
}

// metricValue returns the value of the first /metrics line that match accepts.
func metricValue(t *testing.T, admin string, match func(line string) bool) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		if !match(line) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v, true
	}
	return 0, false
}

// checkClosedMetric checks, on the admin server's /metrics, that the proxy closed at
// least want connections for reason.
func checkClosedMetric(t *testing.T, admin, reason string, want int) {
	t.Helper()
	got, ok := metricValue(t, admin, func(line string) bool {
		return strings.HasPrefix(line, "strait_connections_closed_total{") &&
			strings.Contains(line, `listener="proxy-0-plaintext"`) && strings.Contains(line, `reason="`+reason+`"`)
	})
	switch {
	case !ok:
		t.Fatalf("no strait_connections_closed_total for the proxy and reason %s in /metrics", reason)
	case int(got) < want:
		t.Fatalf("proxy closed %v connections for %s, want at least %d", got, reason, want)
	}
}
