package e2e

import (
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Helpers shared by the storage tests (storage_test.go): topic configs,
// retention, compaction and DeleteRecords.

const (
	// storageTimeout bounds each storage step (producing, waiting for a
	// retention check or a cleaner pass, reading a partition back).
	storageTimeout = 30 * time.Second
	// fastRetention shortens Kafka's log.retention.check.interval.ms (5m
	// by default) so retention tests see deletions within a second.
	fastRetention = "--log-retention-check-interval=200ms"
	// fastCleaner shortens Kafka's log.cleaner.backoff.ms (15s by default):
	// how long the cleaner sleeps when no log is dirty enough to clean.
	fastCleaner = "--log-cleaner-backoff=200ms"
)

// createTopicWithConfigs creates a topic with replication factor 1 and the
// given topic config overrides (CreateTopics' configs), failing the test on
// any error.
func createTopicWithConfigs(t testing.TB, adm *kadm.Client, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	cfg := make(map[string]*string, len(configs))
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	resp, err := adm.CreateTopic(ctx, partitions, 1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s with %v: %v (%s)", topic, configs, err, resp.ErrMessage)
	}
}

// listedOffset returns one partition's offset from a ListOffsets answer.
func listedOffset(offs kadm.ListedOffsets, err error, topic string, partition int32) (int64, error) {
	if err != nil {
		return 0, err
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok {
		return 0, fmt.Errorf("%s not listed", tp{topic, partition})
	}
	if o.Err != nil {
		return 0, fmt.Errorf("%s: %w", tp{topic, partition}, o.Err)
	}
	return o.Offset, nil
}

// startOffset returns the partition's log start offset (ListOffsets with
// timestamp -2, "earliest").
func startOffset(ctx context.Context, adm *kadm.Client, topic string, partition int32) (int64, error) {
	offs, err := adm.ListStartOffsets(ctx, topic)
	return listedOffset(offs, err, topic, partition)
}

// endOffset returns the partition's high watermark (ListOffsets with
// timestamp -1, "latest").
func endOffset(ctx context.Context, adm *kadm.Client, topic string, partition int32) (int64, error) {
	offs, err := adm.ListEndOffsets(ctx, topic)
	return listedOffset(offs, err, topic, partition)
}

// mustStartOffset is startOffset failing the test on error.
func mustStartOffset(t testing.TB, adm *kadm.Client, topic string, partition int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	o, err := startOffset(ctx, adm, topic, partition)
	if err != nil {
		t.Fatalf("list start offset: %v", err)
	}
	return o
}

// mustEndOffset is endOffset failing the test on error.
func mustEndOffset(t testing.TB, adm *kadm.Client, topic string, partition int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	o, err := endOffset(ctx, adm, topic, partition)
	if err != nil {
		t.Fatalf("list end offset: %v", err)
	}
	return o
}

// readPartition reads one partition with a fresh client, starting at from,
// until it has read the record just before end (the high watermark the
// caller listed). reset is what the client does on OFFSET_OUT_OF_RANGE
// (kgo.ConsumeResetOffset). It returns the first fetch error, if any.
func readPartition(ctx context.Context, p *Process, topic string, partition int32, from, reset kgo.Offset, end int64) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(p.Addr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: from}}),
		kgo.ConsumeResetOffset(reset),
		kgo.FetchMaxWait(250*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) == 0 || recs[len(recs)-1].Offset < end-1 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return recs, fmt.Errorf("read %s up to offset %d: %d records read: %w", tp{topic, partition}, end, len(recs), err)
		}
		if err := fetches.Err(); err != nil {
			return recs, fmt.Errorf("read %s: after %d records: %w", tp{topic, partition}, len(recs), err)
		}
		recs = append(recs, fetches.Records()...)
	}
	return recs, nil
}

// checkFetchOutOfRange checks that fetching the partition at offset gets
// OFFSET_OUT_OF_RANGE: the client is told not to reset (kgo.NoResetOffset),
// so the error reaches the caller instead of being recovered from.
func checkFetchOutOfRange(t testing.TB, p *Process, topic string, partition int32, offset int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	recs, err := readPartition(ctx, p, topic, partition, kgo.NewOffset().At(offset), kgo.NoResetOffset(), offset+1)
	if !errors.Is(err, kerr.OffsetOutOfRange) {
		first := "none"
		if len(recs) > 0 {
			first = fmt.Sprint(recs[0].Offset)
		}
		t.Fatalf("fetch %s at offset %d: got %v (first record read: %s), want OFFSET_OUT_OF_RANGE", tp{topic, partition}, offset, err, first)
	}
}

// partitionDir is where node-1 of a dev process keeps a partition's
// segment files.
func partitionDir(p *Process, topic string, partition int32) string {
	return filepath.Join(p.DataDir(), "node-1", fmt.Sprintf("%s-%d", topic, partition))
}

// segmentBytes returns the total size and number of the segment data files
// (*.log) in dir. Files a deletion has renamed (Kafka's *.log.deleted) do
// not count.
func segmentBytes(dir string) (total int64, files int, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted between ReadDir and Info
		}
		if err != nil {
			return 0, 0, err
		}
		total += info.Size()
		files++
	}
	return total, files, nil
}

// topicConfig returns one config of topic as DescribeConfigs reports it.
func topicConfig(ctx context.Context, adm *kadm.Client, topic, name string) (kadm.Config, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return kadm.Config{}, err
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return kadm.Config{}, fmt.Errorf("describe configs of %s: %w (%s)", topic, err, rc.ErrMessage)
	}
	for _, c := range rc.Configs {
		if c.Key == name {
			return c, nil
		}
	}
	return kadm.Config{}, fmt.Errorf("describe configs of %s: %s not listed", topic, name)
}

// mustTopicConfig is topicConfig failing the test on error.
func mustTopicConfig(t testing.TB, adm *kadm.Client, topic, name string) kadm.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	c, err := topicConfig(ctx, adm, topic, name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return c
}

// alterTopicConfigs sends one IncrementalAlterConfigs request for topic and
// returns the topic's result; err is only a request-level failure.
func alterTopicConfigs(t testing.TB, adm *kadm.Client, topic string, alters ...kadm.AlterConfig) kadm.AlterConfigsResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	resps, err := adm.AlterTopicConfigs(ctx, alters, topic)
	if err != nil {
		t.Fatalf("incremental alter configs of %s: %v", topic, err)
	}
	r, err := resps.On(topic, nil)
	if err != nil {
		t.Fatalf("incremental alter configs of %s: no result for the topic: %v", topic, err)
	}
	return r
}

// setConfig and deleteConfig build incremental alterations.
func setConfig(name, value string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: kadm.StringPtr(value)}
}

func deleteConfig(name string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.DeleteConfig, Name: name}
}

// configString renders a described config for failure messages.
func configString(c kadm.Config) string {
	return fmt.Sprintf("%s=%q (source %v)", c.Key, c.MaybeValue(), c.Source)
}

// incompressible returns n random bytes: producers compress batches by default, and
// tests that count segment rolls need the bytes on disk to be as many as were sent.
func incompressible(n int) []byte {
	b := make([]byte, n)
	_, _ = cryptorand.Read(b)
	return b
}
