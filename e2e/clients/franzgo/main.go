// Command franzgo drives franz-go (kgo and kadm) through the client matrix's commands
// (see package driver).
package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-io/strait/e2e/clients/internal/driver"
)

// timeout bounds each command.
const timeout = 60 * time.Second

func main() {
	driver.Main("github.com/twmb/franz-go", map[string]driver.Command{
		"metadata": {Args: 1, Run: metadata},
		"create":   {Args: 3, Run: create},
		"delete":   {Args: 1, Run: deleteTopic},
		"produce":  {Args: 3, Run: produce},
		"consume":  {Args: 2, Run: consume},
		"group":    {Args: 3, Run: group},
		"admin":    {Args: 3, Run: admin},
		"records":  {Args: 1, Run: records},
		"txn":      {Args: 1, Run: txn},
	})
}

func client(bootstrap string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap)}, opts...)...)
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), timeout)
}

func metadata(bootstrap string, args []string) error {
	cl, err := client(bootstrap)
	if err != nil {
		return err
	}
	defer cl.Close()
	c, cancel := ctx()
	defer cancel()
	m, err := kadm.NewClient(cl).Metadata(c, args[0])
	if err != nil {
		return err
	}
	out := map[string]any{"brokers": m.Brokers.NodeIDs()}
	var parts []map[string]any
	for _, p := range m.Topics[args[0]].Partitions.Sorted() {
		if p.Err != nil {
			return fmt.Errorf("partition %d: %w", p.Partition, p.Err)
		}
		parts = append(parts, map[string]any{"id": p.Partition, "leader": p.Leader, "replicas": p.Replicas, "isr": p.ISR})
	}
	out["partitions"] = parts
	driver.PrintJSON(out)
	return nil
}

func create(bootstrap string, args []string) error {
	cl, err := client(bootstrap)
	if err != nil {
		return err
	}
	defer cl.Close()
	c, cancel := ctx()
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(c, int32(driver.Atoi(args[1])), int16(driver.Atoi(args[2])), nil, args[0])
	if err == nil {
		err = resp.Err
	}
	return err
}

func deleteTopic(bootstrap string, args []string) error {
	cl, err := client(bootstrap)
	if err != nil {
		return err
	}
	defer cl.Close()
	c, cancel := ctx()
	defer cancel()
	resp, err := kadm.NewClient(cl).DeleteTopic(c, args[0])
	if err == nil {
		err = resp.Err
	}
	return err
}

var codecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

func produce(bootstrap string, args []string) error {
	codec, ok := codecs[args[1]]
	if !ok {
		return fmt.Errorf("codec %q", args[1])
	}
	cl, err := client(bootstrap, kgo.DefaultProduceTopic(args[0]), kgo.ProducerBatchCompression(codec))
	if err != nil {
		return err
	}
	defer cl.Close()
	n := driver.Atoi(args[2])
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(driver.Key(i)), Value: []byte(driver.Value(i))}
	}
	c, cancel := ctx()
	defer cancel()
	return cl.ProduceSync(c, recs...).FirstErr()
}

func consume(bootstrap string, args []string) error {
	cl, err := client(bootstrap, kgo.ConsumeTopics(args[0]), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	c, cancel := ctx()
	defer cancel()
	for n, want := 0, driver.Atoi(args[1]); n < want; {
		fs := cl.PollFetches(c)
		if err := fs.Err0(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			driver.PrintPosition(r.Partition, r.Offset, r.Key, r.Value)
			n++
		})
	}
	return nil
}

// group runs two members of a group until they have consumed n records between them,
// committing what each consumed before it leaves.
func group(bootstrap string, args []string) error {
	topic, name, n := args[0], args[1], driver.Atoi(args[2])
	seen := driver.NewPositions(n)
	c, cancel := ctx()
	defer cancel()
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for m := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- member(c, bootstrap, topic, name, m, seen)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func member(c context.Context, bootstrap, topic, name string, m int, seen *driver.Positions) error {
	cl, err := client(bootstrap, kgo.ConsumerGroup(name), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.ClientID(fmt.Sprint("member-", m)))
	if err != nil {
		return err
	}
	defer cl.Close() // leaves the group
	for {
		select {
		case <-seen.Done():
			return nil
		case <-c.Done():
			return c.Err()
		default:
		}
		pc, cancel := context.WithTimeout(c, 200*time.Millisecond)
		fs := cl.PollFetches(pc)
		cancel()
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			driver.PrintMember(m, r.Partition, r.Offset)
			seen.Add(r.Partition, r.Offset)
		})
		if err := cl.CommitUncommittedOffsets(c); err != nil {
			return fmt.Errorf("member %d: commit: %w", m, err)
		}
	}
}

// admin alters the topic's retention.ms to 3600000 and reports the admin views the
// checks compare with the broker's.
func admin(bootstrap string, args []string) error {
	topic, name, broker := args[0], args[1], int32(driver.Atoi(args[2]))
	cl, err := client(bootstrap)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	c, cancel := ctx()
	defer cancel()
	out := map[string]any{}

	altered, err := adm.AlterTopicConfigs(c, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("3600000")}}, topic)
	if err == nil {
		_, err = altered.On(topic, nil)
	}
	if err != nil {
		return fmt.Errorf("alter configs: %w", err)
	}
	tcs, err := adm.DescribeTopicConfigs(c, topic)
	if err != nil {
		return err
	}
	tc, err := tcs.On(topic, nil)
	if err == nil {
		err = tc.Err
	}
	if err != nil {
		return err
	}
	for _, cfg := range tc.Configs {
		if cfg.Key == "retention.ms" {
			out["retention_ms"] = cfg.MaybeValue()
		}
	}
	bcs, err := adm.DescribeBrokerConfigs(c, broker)
	if err != nil {
		return err
	}
	brokerConfigs := map[string]string{}
	for _, rc := range bcs {
		if rc.Err != nil {
			return rc.Err
		}
		for _, cfg := range rc.Configs {
			brokerConfigs[cfg.Key] = cfg.MaybeValue()
		}
	}
	out["broker_configs"] = brokerConfigs

	listed, err := adm.ListGroups(c)
	if err != nil {
		return err
	}
	out["groups"] = listed.Groups()
	described, err := adm.DescribeGroups(c, name)
	if err != nil {
		return err
	}
	out["group_state"] = described[name].State

	offsets, err := adm.FetchOffsets(c, name)
	if err == nil {
		err = offsets.Error()
	}
	if err != nil {
		return err
	}
	committed := map[string]int64{}
	for p, o := range offsets[topic] {
		committed[strconv.Itoa(int(p))] = o.At
	}
	out["offsets"] = committed
	ends, err := adm.ListEndOffsets(c, topic)
	if err != nil {
		return err
	}
	lags := map[string]int64{}
	for p, l := range kadm.CalculateGroupLag(described[name], offsets, ends)[topic] {
		lags[strconv.Itoa(int(p))] = l.Lag
	}
	out["lag"] = lags
	driver.PrintJSON(out)
	return nil
}

func records(bootstrap string, args []string) error {
	topic := args[0]
	cl, err := client(bootstrap, kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	c, cancel := ctx()
	defer cancel()
	specials := driver.Specials()
	for _, s := range specials {
		r := &kgo.Record{Value: s.Value, Timestamp: s.Timestamp}
		if s.Key != nil {
			r.Key = []byte(*s.Key)
		}
		for _, h := range s.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
		if err := cl.ProduceSync(c, r).FirstErr(); err != nil {
			return err
		}
	}
	for n := 0; n < len(specials); {
		fs := cl.PollFetches(c)
		if err := fs.Err0(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			var hs [][2]string
			for _, h := range r.Headers {
				hs = append(hs, [2]string{h.Key, string(h.Value)})
			}
			driver.PrintJSON(driver.NewConsumed(r.Key, r.Key == nil, r.Value, hs, r.Timestamp))
			n++
		})
	}
	return nil
}

// txn commits a transaction of c0..c4 and aborts one of a0..a4.
func txn(bootstrap string, args []string) error {
	cl, err := client(bootstrap, kgo.DefaultProduceTopic(args[0]), kgo.TransactionalID("franzgo-txn"))
	if err != nil {
		return err
	}
	defer cl.Close()
	c, cancel := ctx()
	defer cancel()
	for _, end := range []struct {
		prefix string
		commit kgo.TransactionEndTry
	}{{"c", kgo.TryCommit}, {"a", kgo.TryAbort}} {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		for i := range 5 {
			if err := cl.ProduceSync(c, kgo.StringRecord(fmt.Sprint(end.prefix, i))).FirstErr(); err != nil {
				return err
			}
		}
		if err := cl.EndTransaction(c, end.commit); err != nil {
			return err
		}
	}
	return nil
}
