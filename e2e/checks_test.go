package e2e

import (
	"fmt"
	"hash/fnv"
	"runtime"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Tests of the check helpers on synthetic records, so that a failing e2e
// test points at the system and not at its checks.

// fakeLog returns n records as franz-go would deliver them from a topic
// with the given partition count: produced as in
// TestFranzGoProduceConsumeRestart, keys hashed to partitions, offsets
// assigned in produce order, and read back partition by partition.
func fakeLog(n, keys, partitions int) (acked, read []*kgo.Record) {
	next := make([]int64, partitions)
	byPart := make([][]*kgo.Record, partitions)
	for i := range n {
		key := fmt.Sprintf("k%d", i%keys)
		h := fnv.New32a()
		h.Write([]byte(key))
		p := int32(h.Sum32() % uint32(partitions))
		r := &kgo.Record{Topic: "t", Partition: p, Offset: next[p], Key: []byte(key), Value: fmt.Appendf(nil, "v%08d", i)}
		next[p]++
		acked = append(acked, r)
		byPart[p] = append(byPart[p], r)
	}
	for _, rs := range byPart {
		for _, r := range rs {
			c := *r
			read = append(read, &c)
		}
	}
	return acked, read
}

func TestChecksAcceptValidLog(t *testing.T) {
	acked, read := fakeLog(10_000, 100, 8)
	counts := checkDenseOffsets(t, read)
	if len(counts) != 8 {
		t.Fatalf("records in %d partitions, want 8", len(counts))
	}
	checkProducedOrder(t, read, 10_000, 100)
	checkSameRecords(t, acked, read)
}

func TestChecksRejectBadLogs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(read []*kgo.Record) []*kgo.Record
		want   string
	}{
		{"gap", func(r []*kgo.Record) []*kgo.Record { return append(r[:10:10], r[11:]...) }, "offset"},
		{"duplicate", func(r []*kgo.Record) []*kgo.Record { return append(r[:11:11], r[10:]...) }, "offset"},
		{"reordered", func(r []*kgo.Record) []*kgo.Record {
			r[3].Value, r[4].Value = r[4].Value, r[3].Value
			r[3].Key, r[4].Key = r[4].Key, r[3].Key
			return r
		}, "order"},
		{"wrong value", func(r []*kgo.Record) []*kgo.Record { r[5].Value = []byte("v99999999"); return r }, "bad value"},
		{"lost tail", func(r []*kgo.Record) []*kgo.Record { return r[:len(r)-1] }, "never read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acked, read := fakeLog(1000, 10, 4)
			read = tc.mutate(read)
			msg := expectFatal(t, func(tb testing.TB) {
				checkDenseOffsets(tb, read)
				checkProducedOrder(tb, read, 1000, 10)
				checkSameRecords(tb, acked, read)
			})
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("failure %q does not mention %q", msg, tc.want)
			}
		})
	}
}

// fakeTB records failures instead of failing the real test, and runs its
// cleanups when asked. Everything else goes to the real test.
type fakeTB struct {
	testing.TB
	msg      string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	if f.msg == "" {
		f.msg = fmt.Sprintf(format, args...)
	}
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fakeTB) Failed() bool { return f.msg != "" }

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// runFake runs fn and then fake's cleanups (last first), each in a goroutine
// of its own as the testing package does, so that Fatalf can end them.
func runFake(fake *fakeTB, fn func(testing.TB)) {
	run := func(fn func()) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			fn()
		}()
		<-done
	}
	run(func() { fn(fake) })
	for i := len(fake.cleanups) - 1; i >= 0; i-- {
		run(fake.cleanups[i])
	}
}

// expectFatal runs fn (and its cleanups) and returns the first failure it
// reported; it fails the test if fn reported none.
func expectFatal(t *testing.T, fn func(testing.TB)) string {
	t.Helper()
	fake := &fakeTB{TB: t}
	runFake(fake, fn)
	if fake.msg == "" {
		t.Fatal("no failure reported")
	}
	return fake.msg
}
