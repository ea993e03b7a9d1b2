package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The latency mode of `strait bench`: a producer sends records at a fixed rate (linger
// 0, acks=all, idempotent) and a consumer in the same process long-polls them, and each
// record's latency is measured twice: from the produce call to its acknowledgement, and
// from the produce call to the consumer receiving it (the record carries its send time).
// Percentiles are printed each second and for the whole run. Idle partitions can be
// added to the cluster first, to see whether latency grows with the partitions a cluster
// holds (it should not).

// latencyRun is one run's measurements.
type latencyRun struct {
	mu       sync.Mutex
	acked    []time.Duration // produce call -> acknowledgement
	received []time.Duration // produce call -> consumer receipt
	second   []time.Duration // end-to-end, since the last progress line
	errs     int
	firstErr error
	// measureFrom: records sent before it are the warm-up (--warmup), shown in the
	// progress lines but left out of the summary.
	measureFrom time.Time
}

func benchLatency(ctx context.Context, seeds []string, cfg benchConfig, out io.Writer) error {
	if err := ensureTopic(ctx, seeds, cfg); err != nil {
		return err
	}
	if cfg.IdlePartitions > 0 {
		if err := createIdleTopic(ctx, seeds, cfg, out); err != nil {
			return err
		}
	}
	consumer, err := cfg.client(seeds, kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchMaxWait(cfg.FetchMaxWait))
	if err != nil {
		return err
	}
	defer consumer.Close()
	producer, err := cfg.client(seeds, kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(1<<16),
		kgo.ProducerBatchCompression(benchCodecs[cfg.Compression]...))
	if err != nil {
		return err
	}
	defer producer.Close()
	if err := warmUp(ctx, producer, consumer); err != nil {
		return err
	}

	run := &latencyRun{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var consumed sync.WaitGroup
	consumed.Go(func() { run.consume(ctx, consumer) })
	fmt.Fprintf(out, "latency: %d records/s of %d bytes for %s to %s (%d partitions, %d idle)\n",
		cfg.Rate, cfg.RecordSize, cfg.Duration, cfg.Topic, cfg.Partitions, cfg.IdlePartitions)
	sent := run.produce(ctx, producer, cfg, out)
	if cfg.Warmup > 0 {
		fmt.Fprintf(out, "latency: the first %s were warm-up, left out below\n", cfg.Warmup)
	}
	// Let the last records arrive: a record is late after a second at most.
	deadline := time.Now().Add(2*cfg.FetchMaxWait + time.Second)
	for time.Now().Before(deadline) && run.count() < sent {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	consumed.Wait()
	run.summary(out, sent)
	if run.firstErr != nil {
		return fmt.Errorf("latency: %d produce errors, first: %w", run.errs, run.firstErr)
	}
	return nil
}

// produce sends records at cfg.Rate for cfg.Duration, printing progress each second,
// and returns how many it sent. Sends are paced by elapsed time, so a slow send makes
// the next ones catch up rather than lowering the rate.
func (r *latencyRun) produce(ctx context.Context, cl *kgo.Client, cfg benchConfig, out io.Writer) (measured int) {
	start := time.Now()
	r.mu.Lock()
	r.measureFrom = start.Add(cfg.Warmup)
	r.mu.Unlock()
	nextReport := start.Add(time.Second)
	sent, warmUp := 0, 0
	value := make([]byte, max(cfg.RecordSize, 8))
	for ctx.Err() == nil {
		now := time.Now()
		if now.Sub(start) >= cfg.Warmup+cfg.Duration {
			break
		}
		if now.Sub(start) < cfg.Warmup {
			warmUp = int(now.Sub(start).Seconds()*float64(cfg.Rate)) + 1
		}
		if now.After(nextReport) {
			r.report(out, now.Sub(start))
			nextReport = nextReport.Add(time.Second)
		}
		due := int(now.Sub(start).Seconds() * float64(cfg.Rate))
		for ; sent < due; sent++ {
			rec := &kgo.Record{Value: slices.Clone(value)}
			sentAt := time.Now()
			binary.BigEndian.PutUint64(rec.Value, uint64(sentAt.UnixNano()))
			cl.Produce(ctx, rec, func(_ *kgo.Record, err error) { r.acknowledged(sentAt, err) })
		}
		time.Sleep(200 * time.Microsecond)
	}
	cl.Flush(context.Background())
	return sent - warmUp
}

func (r *latencyRun) acknowledged(sentAt time.Time, err error) {
	took := time.Since(sentAt)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs++
		if r.firstErr == nil {
			r.firstErr = err
		}
		return
	}
	if !sentAt.Before(r.measureFrom) {
		r.acked = append(r.acked, took)
	}
}

// consume records each record's end-to-end latency until ctx ends.
func (r *latencyRun) consume(ctx context.Context, cl *kgo.Client) {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		r.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			if len(rec.Value) < 8 {
				return
			}
			sentAt := time.Unix(0, int64(binary.BigEndian.Uint64(rec.Value)))
			took := now.Sub(sentAt)
			if !sentAt.Before(r.measureFrom) {
				r.received = append(r.received, took)
			}
			r.second = append(r.second, took)
		})
		r.mu.Unlock()
	}
}

func (r *latencyRun) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.received)
}

// report prints the last second's end-to-end percentiles.
func (r *latencyRun) report(out io.Writer, elapsed time.Duration) {
	r.mu.Lock()
	second := r.second
	r.second = nil
	r.mu.Unlock()
	fmt.Fprintf(out, "latency: %3.0fs: %6d records/s received, end to end %s\n", elapsed.Seconds(), len(second), percentiles(second, "p50", "p99", "max"))
}

func (r *latencyRun) summary(out io.Writer, sent int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(out, "latency: %d sent, %d acknowledged, %d received\n", sent, len(r.acked), len(r.received))
	fmt.Fprintf(out, "latency: produce -> ack      %s\n", percentiles(r.acked, "p50", "p90", "p99", "p999", "max"))
	fmt.Fprintf(out, "latency: produce -> consumer %s\n", percentiles(r.received, "p50", "p90", "p99", "p999", "max"))
}

// percentiles formats the named percentiles of ds ("p50", "p999", "max").
func percentiles(ds []time.Duration, names ...string) string {
	if len(ds) == 0 {
		return "(none)"
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	var b strings.Builder
	for _, name := range names {
		q := map[string]float64{"p50": .5, "p90": .9, "p99": .99, "p999": .999, "max": 1}[name]
		d := sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
		fmt.Fprintf(&b, " %s %s", name, fmtLatency(d))
	}
	return strings.TrimSpace(b.String())
}

func fmtLatency(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

// warmUp produces records until the consumer sees one, so that metadata, connections
// and the consumer's position are in place before anything is measured.
func warmUp(ctx context.Context, producer, consumer *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		value := make([]byte, 8)
		binary.BigEndian.PutUint64(value, uint64(time.Now().UnixNano()))
		if err := producer.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			return fmt.Errorf("warm-up produce: %w", err)
		}
		poll, cancelPoll := context.WithTimeout(ctx, 300*time.Millisecond)
		n := consumer.PollFetches(poll).NumRecords()
		cancelPoll()
		if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("warm-up: the consumer saw none of the records produced: %w", ctx.Err())
}

// createIdleTopic adds cfg.IdlePartitions partitions that nothing writes to.
func createIdleTopic(ctx context.Context, seeds []string, cfg benchConfig, out io.Writer) error {
	cl, err := cfg.client(seeds)
	if err != nil {
		return err
	}
	defer cl.Close()
	name := cfg.Topic + "-idle"
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(cfg.IdlePartitions), -1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		return fmt.Errorf("create %d idle partitions in %q: %w", cfg.IdlePartitions, name, err)
	}
	return waitOpened(ctx, kadm.NewClient(cl), name, cfg.IdlePartitions, out)
}

// waitOpened waits until every partition of topic answers ListOffsets, that is its
// leader has opened it, so that opening thousands of partitions is not measured as
// latency. It prints progress while it waits.
func waitOpened(ctx context.Context, adm *kadm.Client, topic string, partitions int, out io.Writer) error {
	started := time.Now()
	lastReport := started
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		opened := 0
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					opened++
				}
			})
		}
		if opened >= partitions {
			fmt.Fprintf(out, "%d idle partitions open after %s\n", partitions, time.Since(started).Round(100*time.Millisecond))
			return nil
		}
		if time.Since(lastReport) >= 2*time.Second {
			fmt.Fprintf(out, "waiting for the idle partitions to open: %d of %d\n", opened, partitions)
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d idle partitions of %q open: %w", opened, partitions, topic, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
