package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchConfig is what `strait bench` measures. In throughput mode: produce a fixed
// number of records of a fixed size to a topic, then consume them all back. In latency
// mode (bench_latency.go): produce at a fixed rate and measure each record's latency.
type benchConfig struct {
	Mode           string
	Rate           int
	Duration       time.Duration
	Warmup         time.Duration
	FetchMaxWait   time.Duration
	IdlePartitions int

	Brokers     string
	TLS         bool
	TLSCA       string
	Compression string
	tls         *tls.Config // from --tls and --tls-ca; nil without --tls
	Topic       string
	Records     int
	RecordSize  int
	Partitions  int
	Acks        string
	Linger      time.Duration
	Phase       string
}

func (c *benchConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Brokers, "brokers", "127.0.0.1:9092", "comma-separated bootstrap addresses")
	fs.BoolVar(&c.TLS, "tls", false, "connect with TLS (an SSL listener), to measure what encryption costs")
	fs.StringVar(&c.TLSCA, "tls-ca", "", "PEM CA certificates the brokers' certificates are verified against (default: the system's)")
	fs.StringVar(&c.Compression, "compression", "snappy", "producer batch compression: none, gzip, snappy, lz4 or zstd (none puts every record byte on the wire, as measuring TLS wants)")
	fs.StringVar(&c.Topic, "topic", "strait-bench", "topic to write and read (created if missing)")
	fs.IntVar(&c.Records, "records", 1_000_000, "records to produce and consume")
	fs.IntVar(&c.RecordSize, "record-size", 100, "bytes per record value")
	fs.IntVar(&c.Partitions, "partitions", 8, "partitions when creating the topic")
	fs.StringVar(&c.Acks, "acks", "all", "producer acks: all, 1 or 0")
	fs.DurationVar(&c.Linger, "linger", 0, "producer linger (batching delay)")
	fs.StringVar(&c.Phase, "phase", "both", "what to measure: produce, consume or both")
	fs.StringVar(&c.Mode, "mode", "throughput", "throughput (as fast as possible) or latency (at --rate, percentiles of each record's latency)")
	fs.IntVar(&c.Rate, "rate", 10_000, "latency mode: records per second")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "latency mode: how long to produce")
	fs.DurationVar(&c.Warmup, "warmup", 0, "latency mode: produce this long first without counting it (new partitions settling, connections opening)")
	fs.DurationVar(&c.FetchMaxWait, "fetch-max-wait", 100*time.Millisecond, "latency mode: the consumer's long poll (fetch.max.wait.ms)")
	fs.IntVar(&c.IdlePartitions, "idle-partitions", 0, "latency mode: partitions to add to the cluster first, in a topic nothing writes to")
}

func (c *benchConfig) validate() error {
	switch {
	case c.Records < 1:
		return fmt.Errorf("--records %d: must be at least 1", c.Records)
	case c.RecordSize < 0:
		return fmt.Errorf("--record-size %d: must not be negative", c.RecordSize)
	case c.Partitions < 1:
		return fmt.Errorf("--partitions %d: must be at least 1", c.Partitions)
	case c.Acks != "all" && c.Acks != "1" && c.Acks != "0":
		return fmt.Errorf("--acks %q: must be all, 1 or 0", c.Acks)
	case c.Phase != "both" && c.Phase != "produce" && c.Phase != "consume":
		return fmt.Errorf("--phase %q: must be produce, consume or both", c.Phase)
	case c.Mode != "throughput" && c.Mode != "latency":
		return fmt.Errorf("--mode %q: must be throughput or latency", c.Mode)
	case c.Rate < 1 || c.Duration <= 0 || c.Warmup < 0 || c.FetchMaxWait <= 0 || c.IdlePartitions < 0:
		return fmt.Errorf("--rate, --duration and --fetch-max-wait must be positive, --warmup and --idle-partitions not negative")
	case benchCodecs[c.Compression] == nil:
		return fmt.Errorf("--compression %q: must be none, gzip, snappy, lz4 or zstd", c.Compression)
	case c.TLSCA != "" && !c.TLS:
		return errors.New("--tls-ca is for --tls; add --tls to connect with TLS")
	}
	return c.loadTLS()
}

var benchCodecs = map[string][]kgo.CompressionCodec{
	"none": {kgo.NoCompression()}, "gzip": {kgo.GzipCompression()}, "snappy": {kgo.SnappyCompression()},
	"lz4": {kgo.Lz4Compression()}, "zstd": {kgo.ZstdCompression()},
}

// loadTLS makes the clients' TLS config: with --tls, brokers' certificates verified
// against --tls-ca (or the system's CAs).
func (c *benchConfig) loadTLS() error {
	if !c.TLS {
		return nil
	}
	c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA == "" {
		return nil
	}
	pem, err := os.ReadFile(c.TLSCA)
	if err != nil {
		return fmt.Errorf("--tls-ca: %w", err)
	}
	c.tls.RootCAs = x509.NewCertPool()
	if !c.tls.RootCAs.AppendCertsFromPEM(pem) {
		return fmt.Errorf("--tls-ca %s: no PEM certificate in it", c.TLSCA)
	}
	return nil
}

// client returns a client of the seeds, over TLS with --tls, with opts after.
func (c *benchConfig) client(seeds []string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DialTLSConfig(c.tls)}, opts...)...)
}

func runBench(args []string) error {
	var cfg benchConfig
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	seeds := strings.Split(cfg.Brokers, ",")
	if cfg.Mode == "latency" {
		return benchLatency(ctx, seeds, cfg, os.Stdout)
	}
	if cfg.Phase != "consume" {
		if err := ensureTopic(ctx, seeds, cfg); err != nil {
			return err
		}
		if err := benchProduce(ctx, seeds, cfg, os.Stdout); err != nil {
			return err
		}
	}
	if cfg.Phase != "produce" {
		return benchConsume(ctx, seeds, cfg, os.Stdout)
	}
	return nil
}

func ensureTopic(ctx context.Context, seeds []string, cfg benchConfig) error {
	cl, err := cfg.client(seeds)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(cfg.Partitions), -1, nil, cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		return fmt.Errorf("create topic %q at %s: %w", cfg.Topic, cfg.Brokers, err)
	}
	return nil
}

func benchProduce(ctx context.Context, seeds []string, cfg benchConfig, out io.Writer) error {
	acks := map[string]kgo.Acks{"all": kgo.AllISRAcks(), "1": kgo.LeaderAck(), "0": kgo.NoAck()}[cfg.Acks]
	opts := []kgo.Opt{kgo.RequiredAcks(acks), kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerLinger(cfg.Linger), kgo.MaxBufferedRecords(1 << 16), kgo.ProducerBatchCompression(benchCodecs[cfg.Compression]...)}
	if cfg.Acks != "all" {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := cfg.client(seeds, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	value := make([]byte, cfg.RecordSize)
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	p := newProgress(out, "produce", cfg.Records, cfg.RecordSize, &done)
	for i := 0; i < cfg.Records && ctx.Err() == nil; i++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				once.Do(func() { firstErr = err })
			}
			done.Add(1)
		})
	}
	wg.Wait()
	p.finish()
	if firstErr != nil {
		return fmt.Errorf("produce: %w", firstErr)
	}
	return ctx.Err()
}

func benchConsume(ctx context.Context, seeds []string, cfg benchConfig, out io.Writer) error {
	cl, err := cfg.client(seeds, kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var done atomic.Int64
	p := newProgress(out, "consume", cfg.Records, cfg.RecordSize, &done)
	defer p.finish()
	for done.Load() < int64(cfg.Records) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var errs []error
		fetches.EachError(func(t string, part int32, err error) {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", t, part, err))
		})
		if len(errs) > 0 {
			return fmt.Errorf("consume: %w", errors.Join(errs...))
		}
		done.Add(int64(fetches.NumRecords()))
	}
	return nil
}

// progress prints a line a second while a phase runs, and a summary at the end.
type progress struct {
	out        io.Writer
	phase      string
	total      int
	recordSize int
	done       *atomic.Int64
	start      time.Time
	stop       chan struct{}
	stopped    sync.WaitGroup
}

func newProgress(out io.Writer, phase string, total, recordSize int, done *atomic.Int64) *progress {
	p := &progress{out: out, phase: phase, total: total, recordSize: recordSize, done: done, start: time.Now(), stop: make(chan struct{})}
	p.stopped.Add(1)
	go p.run()
	return p
}

func (p *progress) run() {
	defer p.stopped.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
			n := p.done.Load()
			fmt.Fprintf(p.out, "%s: %d/%d records (%.0f%%)\n", p.phase, n, p.total, 100*float64(n)/float64(p.total))
		}
	}
}

func (p *progress) finish() {
	close(p.stop)
	p.stopped.Wait()
	took := time.Since(p.start)
	n := p.done.Load()
	mb := float64(n) * float64(p.recordSize) / 1e6
	fmt.Fprintf(p.out, "%s: %d records of %d bytes in %s: %.0f records/s, %.1f MB/s\n",
		p.phase, n, p.recordSize, took.Round(time.Millisecond), float64(n)/took.Seconds(), mb/took.Seconds())
}
