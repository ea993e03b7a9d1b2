package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCompactedTopicKeepsLatestPerKey checks Kafka's log compaction
// (cleanup.policy=compact; Kafka docs "Log Compaction"): once the cleaner
// has run over the non-active segments, the log holds at least the last
// value of every key, no older value of any key, and offsets keep their
// order (the cleaner leaves gaps, it never renumbers). A tombstone (null
// value) removes its key's older values; the tombstone itself stays for
// delete.retention.ms after the cleaning that reached it, so with
// delete.retention.ms=0 it may remain until a later pass.
func TestCompactedTopicKeepsLatestPerKey(t *testing.T) {
	const (
		topic  = "compacted"
		keys   = 200
		rounds = 20
		filler = 40 // 1 KiB records that roll the active segment past the data
	)
	tombstoned := func(k int) bool { return k%10 == 0 } // 20 keys
	p := StartDev(t, Args(fastCleaner))
	adm := p.Admin(t)
	createTopicWithConfigs(t, adm, topic, 1, map[string]string{
		"cleanup.policy":            "compact",
		"segment.bytes":             "16384",
		"min.cleanable.dirty.ratio": "0.01",
		"delete.retention.ms":       "0",
	})

	producer := p.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(4<<10), // many batches, so segments roll often
	)
	for r := range rounds {
		recs := make([]*kgo.Record, keys)
		for k := range recs {
			recs[k] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "k%d-r%d", k, r)}
			if r == rounds-1 && tombstoned(k) {
				recs[k].Value = nil
			}
		}
		produceAll(t, producer, recs, storageTimeout) // a round is acknowledged before the next starts
	}
	// Kafka never cleans the active segment: roll it past the last round.
	for i := range filler {
		rec := &kgo.Record{Key: fmt.Appendf(nil, "filler-%d", i), Value: incompressible(1 << 10)}
		produceAll(t, producer, []*kgo.Record{rec}, storageTimeout)
	}
	end := mustEndOffset(t, adm, topic, 0)
	if want := int64(keys*rounds + filler); end != want {
		t.Fatalf("end offset %d after producing %d records", end, want)
	}

	want := func(key string) (value string, tombstone bool, ok bool) {
		var k int
		if _, err := fmt.Sscanf(key, "k%d", &k); err == nil && key == fmt.Sprintf("k%d", k) && k < keys {
			return fmt.Sprintf("k%d-r%d", k, rounds-1), tombstoned(k), true
		}
		return "", false, false
	}
	var last string
	Eventually(t, storageTimeout, func(ctx context.Context) error {
		recs, err := readPartition(ctx, p, topic, 0, kgo.NewOffset().At(0), kgo.NewOffset().AtStart(), end)
		if err != nil && ctx.Err() != nil && last != "" {
			return fmt.Errorf("%s (the next read timed out: %v)", last, err) // keep the finding, not the deadline
		}
		if err != nil {
			return err
		}
		byKey := make(map[string][]*kgo.Record)
		for i, r := range recs {
			if i > 0 && r.Offset <= recs[i-1].Offset {
				t.Fatalf("offset %d read after offset %d: compaction must keep offsets increasing", r.Offset, recs[i-1].Offset)
			}
			byKey[string(r.Key)] = append(byKey[string(r.Key)], r)
		}
		for i := range filler {
			if n := len(byKey[fmt.Sprintf("filler-%d", i)]); n != 1 {
				t.Fatalf("key filler-%d: %d records after compaction, want 1 (it was written once)", i, n)
			}
		}
		for key, rs := range byKey {
			value, tomb, ok := want(key)
			if strings.HasPrefix(key, "filler-") {
				continue
			}
			if !ok {
				t.Fatalf("read key %q at offset %d, which was never produced", key, rs[0].Offset)
			}
			if tomb {
				if len(rs) > 1 || rs[0].Value != nil {
					last = fmt.Sprintf("tombstoned key %s: %s", key, describeRecords(rs))
					return errors.New(last)
				}
				continue
			}
			if len(rs) != 1 || string(rs[0].Value) != value {
				last = fmt.Sprintf("key %s: %s, want only %q", key, describeRecords(rs), value)
				return errors.New(last)
			}
		}
		for k := range keys {
			if key := fmt.Sprintf("k%d", k); !tombstoned(k) && len(byKey[key]) == 0 {
				t.Fatalf("live key %s has no record: compaction must keep each key's latest value", key)
			}
		}
		t.Logf("compacted log: %d records over offsets 0..%d", len(recs), end-1)
		return nil
	})
}

// describeRecords renders a key's records (offset and value) for a failure
// message.
func describeRecords(rs []*kgo.Record) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		v := fmt.Sprintf("%q", r.Value)
		if r.Value == nil {
			v = "tombstone"
		}
		parts[i] = fmt.Sprintf("%d:%s", r.Offset, v)
	}
	if len(parts) > 6 {
		parts = append(append(parts[:3:3], "..."), parts[len(parts)-3:]...)
	}
	return fmt.Sprintf("%d records [%s]", len(rs), strings.Join(parts, " "))
}

// TestRetentionBoundsDiskWhileDataFlows checks size-based retention
// (retention.bytes; Kafka's LogManager cleanupLogs, run every
// log.retention.check.interval.ms): the oldest whole segments are deleted
// while the log is larger than retention.bytes, so the partition's segment
// files stay within retention.bytes plus about a segment, however much is
// written; the log start offset moves up, and a consumer asking for a
// deleted offset gets OFFSET_OUT_OF_RANGE and (with auto.offset.reset
// earliest) resumes at the new start.
func TestRetentionBoundsDiskWhileDataFlows(t *testing.T) {
	const (
		topic          = "retained"
		segment        = 64 << 10
		retention      = 256 << 10
		valueSize      = 1 << 10
		total          = 8 << 20
		chunk          = 256 // records produced between disk checks
		quiescentBound = retention + 3*segment
		// Between two retention checks up to a chunk lands on disk, with
		// the record and batch headers around each value.
		peakBound = quiescentBound + chunk*valueSize*11/10
	)
	p := StartDev(t, Args(fastRetention))
	adm := p.Admin(t)
	createTopicWithConfigs(t, adm, topic, 1, map[string]string{
		"segment.bytes":   fmt.Sprint(segment),
		"retention.bytes": fmt.Sprint(retention),
	})
	dir := partitionDir(p, topic, 0)
	producer := p.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(16<<10), // batches well under a segment
	)

	// A sampler watches the directory for the whole run.
	var (
		mu      sync.Mutex
		peak    int64
		peakErr error
	)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			size, _, err := segmentBytes(dir)
			if errors.Is(err, os.ErrNotExist) {
				err = nil // the directory may appear with the first append
			}
			mu.Lock()
			if err != nil && peakErr == nil {
				peakErr = err
			}
			peak = max(peak, size)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	value := bytes.Repeat([]byte{'v'}, valueSize)
	start := time.Now()
	for n := 0; n < total/valueSize; n += chunk {
		recs := make([]*kgo.Record, chunk)
		for i := range recs {
			recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", n+i), Value: value}
		}
		produceAll(t, producer, recs, storageTimeout)
		Eventually(t, storageTimeout, func(context.Context) error {
			size, files, err := segmentBytes(dir)
			if err != nil {
				return err
			}
			if size > quiescentBound {
				return fmt.Errorf("after %d records: %d bytes in %d segment files of %s, want at most %d (retention.bytes %d + 3 segments)",
					n+chunk, size, files, dir, quiescentBound, retention)
			}
			return nil
		})
	}
	close(stop)
	<-sampled
	t.Logf("produced %d MiB in %v; largest partition size seen %d bytes", total>>20, time.Since(start), peak)
	if peakErr != nil {
		t.Fatalf("read %s: %v", dir, peakErr)
	}
	if peak > peakBound {
		t.Fatalf("the partition's segment files reached %d bytes, want at most %d (retention.bytes %d + 3 segments + one chunk of %d records)",
			peak, peakBound, retention, chunk)
	}

	end := mustEndOffset(t, adm, topic, 0)
	if want := int64(total / valueSize); end != want {
		t.Fatalf("end offset %d, want %d: retention must not change the end offset", end, want)
	}
	logStart := mustStartOffset(t, adm, topic, 0)
	if logStart <= 0 || logStart >= end {
		t.Fatalf("log start offset %d, want in (0, %d): retention deletes old segments but keeps recent data", logStart, end)
	}
	checkFetchOutOfRange(t, p, topic, 0, 0)

	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	recs, err := readPartition(ctx, p, topic, 0, kgo.NewOffset().At(0), kgo.NewOffset().AtStart(), end)
	if err != nil {
		t.Fatalf("consume from offset 0 with reset to earliest: %v", err)
	}
	after := mustStartOffset(t, adm, topic, 0)
	if first := recs[0].Offset; first < logStart || first > after {
		t.Fatalf("consumer reset to offset %d, want the log start offset (%d, then %d)", first, logStart, after)
	}
	for i, r := range recs[1:] {
		if r.Offset != recs[i].Offset+1 {
			t.Fatalf("offset %d after %d: retention must leave the kept records dense", r.Offset, recs[i].Offset)
		}
	}
}

// TestAlterConfigsTakeEffect checks IncrementalAlterConfigs on topics
// (KIP-339) and that Kafka applies a topic config change to a live log:
// SET overrides show in DescribeConfigs with source DYNAMIC_TOPIC_CONFIG;
// one alteration leaves other overrides alone; a smaller segment.bytes
// rolls segments at once and retention.ms=1000 deletes the old ones at the
// next retention check; DELETE restores the default; and invalid values or
// names are refused whole with INVALID_CONFIG and a message naming the
// setting.
func TestAlterConfigsTakeEffect(t *testing.T) {
	const topic = "altered"
	p := StartDev(t, Args(fastRetention))
	requireAPIs(t, p, kmsg.IncrementalAlterConfigs, kmsg.DescribeConfigs)
	adm := p.Admin(t)
	createTopic(t, adm, topic, 1, storageTimeout)

	defaults := make(map[string]kadm.Config)
	for _, name := range []string{"retention.ms", "segment.bytes", "cleanup.policy"} {
		c := mustTopicConfig(t, adm, topic, name)
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("new topic without overrides: %s, want a default source", configString(c))
		}
		defaults[name] = c
	}

	checkOverride := func(name, value string) {
		t.Helper()
		c := mustTopicConfig(t, adm, topic, name)
		if c.MaybeValue() != value || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("describe after alter: %s, want %q from DYNAMIC_TOPIC_CONFIG", configString(c), value)
		}
	}
	alterOK := func(alters ...kadm.AlterConfig) {
		t.Helper()
		if r := alterTopicConfigs(t, adm, topic, alters...); r.Err != nil {
			t.Fatalf("alter %s: %v (%s)", topic, r.Err, r.ErrMessage)
		}
	}

	// Two separate SETs: incremental alteration keeps the first.
	alterOK(setConfig("segment.bytes", "16384"))
	alterOK(setConfig("retention.ms", "3600000"))
	checkOverride("segment.bytes", "16384")
	checkOverride("retention.ms", "3600000")

	// Invalid alterations change nothing.
	for _, bad := range []kadm.AlterConfig{
		setConfig("retention.ms", "abc"),
		setConfig("cleanup.policy", "bogus"),
		setConfig("no.such.config", "1"),
	} {
		r := alterTopicConfigs(t, adm, topic, bad)
		if !errors.Is(r.Err, kerr.InvalidConfig) || !strings.Contains(r.ErrMessage, bad.Name) {
			t.Fatalf("alter %s=%s: got %v (%q), want INVALID_CONFIG with a message naming %s",
				bad.Name, *bad.Value, r.Err, r.ErrMessage, bad.Name)
		}
	}
	checkOverride("retention.ms", "3600000")
	if c, d := mustTopicConfig(t, adm, topic, "cleanup.policy"), defaults["cleanup.policy"]; c.MaybeValue() != d.MaybeValue() {
		t.Fatalf("after a refused alteration: %s, want it unchanged (%s)", configString(c), configString(d))
	}

	// 100 KiB in 16 KiB segments.
	const n = 100
	producer := p.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(4<<10),
	)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: incompressible(1 << 10)}
	}
	produceAll(t, producer, recs, storageTimeout)
	dir := partitionDir(p, topic, 0)
	if _, files, err := segmentBytes(dir); err != nil || files < 3 {
		t.Fatalf("after 100 KiB with segment.bytes=16384: %d segment files in %s (%v), want several", files, dir, err)
	}
	if s := mustStartOffset(t, adm, topic, 0); s != 0 {
		t.Fatalf("log start offset %d before any deletion, want 0", s)
	}

	alterOK(setConfig("retention.ms", "1000"))
	checkOverride("retention.ms", "1000")
	checkOverride("segment.bytes", "16384")
	Eventually(t, storageTimeout, func(ctx context.Context) error {
		s, err := startOffset(ctx, adm, topic, 0)
		if err != nil {
			return err
		}
		if s == 0 {
			return errors.New("log start offset still 0 with retention.ms=1000")
		}
		if s > n {
			t.Fatalf("log start offset %d beyond the end offset %d", s, n)
		}
		return nil
	})
	if e := mustEndOffset(t, adm, topic, 0); e != n {
		t.Fatalf("end offset %d after time-based deletion, want %d", e, n)
	}

	alterOK(deleteConfig("retention.ms"), deleteConfig("segment.bytes"))
	for _, name := range []string{"retention.ms", "segment.bytes"} {
		c, d := mustTopicConfig(t, adm, topic, name), defaults[name]
		if c.MaybeValue() != d.MaybeValue() || c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			t.Fatalf("after DELETE: %s, want the default %s", configString(c), configString(d))
		}
	}
}

// TestDeleteRecords checks DeleteRecords (KIP-107): it moves the log start
// offset to the requested offset and answers with it as the low watermark;
// ListOffsets(earliest) reports it; a fetch below it gets
// OFFSET_OUT_OF_RANGE, so an auto.offset.reset=earliest consumer resumes at
// it; and the new start offset survives a restart (Kafka checkpoints it in
// log-start-offset-checkpoint).
func TestDeleteRecords(t *testing.T) {
	const (
		topic = "trimmed"
		n     = 100
		to    = 40
	)
	p := StartDev(t)
	requireAPIs(t, p, kmsg.DeleteRecords)
	adm := p.Admin(t)
	createTopic(t, adm, topic, 1, storageTimeout)
	producer := p.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
	}
	produceAll(t, producer, recs, storageTimeout)

	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: to})
	resps, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	r, err := resps.On(topic, 0, nil)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("delete records of %s before %d: %v", tp{topic, 0}, to, err)
	}
	if r.LowWatermark != to {
		t.Fatalf("delete records before %d: low watermark %d, want %d", to, r.LowWatermark, to)
	}

	check := func(phase string) {
		t.Helper()
		if s := mustStartOffset(t, adm, topic, 0); s != to {
			t.Fatalf("%s: log start offset %d, want %d", phase, s, to)
		}
		if e := mustEndOffset(t, adm, topic, 0); e != n {
			t.Fatalf("%s: end offset %d, want %d", phase, e, n)
		}
		checkFetchOutOfRange(t, p, topic, 0, 10)
		ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
		defer cancel()
		got, err := readPartition(ctx, p, topic, 0, kgo.NewOffset().At(10), kgo.NewOffset().AtStart(), n)
		if err != nil {
			t.Fatalf("%s: consume from offset 10 with reset to earliest: %v", phase, err)
		}
		checkSameRecords(t, recs[to:], got)
	}
	check("after DeleteRecords")
	p.Restart(t)
	check("after restart")
}

// TestMinInsyncReplicas checks min.insync.replicas: Kafka refuses an
// acks=all produce with NOT_ENOUGH_REPLICAS, before appending, while the
// in-sync replicas number fewer than the setting (here one node against
// min.insync.replicas=2); acks=1 does not consult the setting and succeeds.
func TestMinInsyncReplicas(t *testing.T) {
	const topic = "min-isr"
	p := StartDev(t)
	adm := p.Admin(t)
	createTopicWithConfigs(t, adm, topic, 1, map[string]string{"min.insync.replicas": "2"})

	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	all := p.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(1),
		kgo.RecordDeliveryTimeout(10*time.Second),
		kgo.MetadataMinAge(100*time.Millisecond), // the retry waits for a metadata refresh
	)
	err := all.ProduceSync(ctx, &kgo.Record{Value: []byte("acks=all")}).FirstErr()
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all produce with min.insync.replicas=2 on one replica: got %v, want NOT_ENOUGH_REPLICAS", err)
	}

	leader := p.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(),
	)
	res := leader.ProduceSync(ctx, &kgo.Record{Value: []byte("acks=1")})
	rec, err := res.First()
	if err != nil {
		t.Fatalf("acks=1 produce with min.insync.replicas=2: %v", err)
	}
	if rec.Offset != 0 {
		t.Fatalf("acks=1 record at offset %d, want 0: the refused acks=all record must not have been appended", rec.Offset)
	}
	if e := mustEndOffset(t, adm, topic, 0); e != 1 {
		t.Fatalf("end offset %d, want 1", e)
	}
}
