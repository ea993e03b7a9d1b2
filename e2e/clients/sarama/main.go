// Command sarama drives IBM/sarama through the client matrix's commands (see package
// driver).
package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/strait-io/strait/e2e/clients/internal/driver"
)

func main() {
	driver.Main("github.com/IBM/sarama", map[string]driver.Command{
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

// config is sarama's, told the protocol version (sarama does not negotiate one; zstd
// and headers need 2.1+).
func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	return c
}

func metadata(bootstrap string, args []string) error {
	cl, err := sarama.NewClient([]string{bootstrap}, config())
	if err != nil {
		return err
	}
	defer cl.Close()
	adm, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		return err
	}
	brokers, _, err := adm.DescribeCluster()
	if err != nil {
		return err
	}
	var ids []int32
	for _, b := range brokers {
		ids = append(ids, b.ID())
	}
	topics, err := adm.DescribeTopics([]string{args[0]})
	if err != nil {
		return err
	}
	var parts []map[string]any
	for _, p := range topics[0].Partitions {
		if p.Err != sarama.ErrNoError {
			return p.Err
		}
		parts = append(parts, map[string]any{"id": p.ID, "leader": p.Leader, "replicas": p.Replicas, "isr": p.Isr})
	}
	driver.PrintJSON(map[string]any{"brokers": ids, "partitions": parts})
	return nil
}

func withAdmin(bootstrap string, fn func(sarama.ClusterAdmin) error) error {
	adm, err := sarama.NewClusterAdmin([]string{bootstrap}, config())
	if err != nil {
		return err
	}
	defer adm.Close()
	return fn(adm)
}

func create(bootstrap string, args []string) error {
	return withAdmin(bootstrap, func(adm sarama.ClusterAdmin) error {
		return adm.CreateTopic(args[0], &sarama.TopicDetail{
			NumPartitions: int32(driver.Atoi(args[1])), ReplicationFactor: int16(driver.Atoi(args[2])),
		}, false)
	})
}

func deleteTopic(bootstrap string, args []string) error {
	return withAdmin(bootstrap, func(adm sarama.ClusterAdmin) error { return adm.DeleteTopic(args[0]) })
}

var codecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

func produce(bootstrap string, args []string) error {
	codec, ok := codecs[args[1]]
	if !ok {
		return fmt.Errorf("codec %q", args[1])
	}
	c := config()
	c.Producer.Compression = codec
	c.Producer.Flush.Messages = 500 // batch the records
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	p, err := sarama.NewAsyncProducer([]string{bootstrap}, c)
	if err != nil {
		return err
	}
	n := driver.Atoi(args[2])
	go func() {
		for i := range n {
			p.Input() <- &sarama.ProducerMessage{Topic: args[0],
				Key: sarama.StringEncoder(driver.Key(i)), Value: sarama.StringEncoder(driver.Value(i))}
		}
	}()
	for range n {
		select {
		case <-p.Successes():
		case err := <-p.Errors():
			p.Close()
			return err
		}
	}
	return p.Close()
}

func consume(bootstrap string, args []string) error {
	c, err := sarama.NewConsumer([]string{bootstrap}, config())
	if err != nil {
		return err
	}
	defer c.Close()
	parts, err := c.Partitions(args[0])
	if err != nil {
		return err
	}
	msgs := make(chan *sarama.ConsumerMessage)
	for _, p := range parts {
		pc, err := c.ConsumePartition(args[0], p, sarama.OffsetOldest)
		if err != nil {
			return err
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				msgs <- m
			}
		}()
	}
	timeout := time.After(60 * time.Second)
	for n := driver.Atoi(args[1]); n > 0; n-- {
		select {
		case m := <-msgs:
			driver.PrintPosition(m.Partition, m.Offset, m.Key, m.Value)
		case <-timeout:
			return fmt.Errorf("%d records still to read", n)
		}
	}
	return nil
}

// member is a sarama.ConsumerGroupHandler that marks what it reads and commits it
// synchronously (Commit) once per batch and when its session ends.
type member struct {
	id   int
	seen *driver.Positions
}

func (member) Setup(sarama.ConsumerGroupSession) error     { return nil }
func (member) Cleanup(s sarama.ConsumerGroupSession) error { s.Commit(); return nil }

func (m member) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			driver.PrintMember(m.id, msg.Partition, msg.Offset)
			s.MarkMessage(msg, "")
			if len(claim.Messages()) == 0 { // commit each batch fetched, not each record
				s.Commit()
			}
			m.seen.Add(msg.Partition, msg.Offset)
		case <-s.Context().Done(): // sarama waits for every claim to return before it ends a session
			return nil
		}
	}
}

func group(bootstrap string, args []string) error {
	topic, name, n := args[0], args[1], driver.Atoi(args[2])
	seen := driver.NewPositions(n)
	c := config()
	c.Consumer.Offsets.AutoCommit.Enable = false
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for id := range 2 {
		g, err := sarama.NewConsumerGroup([]string{bootstrap}, name, c)
		if err != nil {
			return err
		}
		mctx, stop := context.WithCancel(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer g.Close() // leaves the group
			go func() {
				select {
				case <-seen.Done():
				case <-ctx.Done():
				}
				stop()
			}()
			for mctx.Err() == nil {
				if err := g.Consume(mctx, []string{topic}, member{id, seen}); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
					errs <- fmt.Errorf("member %d: %w", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	select {
	case <-seen.Done():
		return nil
	default:
		return fmt.Errorf("timed out: %w", ctx.Err())
	}
}

func admin(bootstrap string, args []string) error {
	topic, name, broker := args[0], args[1], args[2]
	return withAdmin(bootstrap, func(adm sarama.ClusterAdmin) error {
		out := map[string]any{}
		value := "3600000"
		if err := adm.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
			"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &value},
		}, false); err != nil {
			return fmt.Errorf("alter configs: %w", err)
		}
		entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms"}})
		if err != nil {
			return err
		}
		for _, e := range entries {
			out["retention_ms"] = e.Value
		}
		entries, err = adm.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: broker})
		if err != nil {
			return err
		}
		brokerConfigs := map[string]string{}
		for _, e := range entries {
			brokerConfigs[e.Name] = e.Value
		}
		out["broker_configs"] = brokerConfigs

		groups, err := adm.ListConsumerGroups()
		if err != nil {
			return err
		}
		var names []string
		for g := range groups {
			names = append(names, g)
		}
		out["groups"] = names
		described, err := adm.DescribeConsumerGroups([]string{name})
		if err != nil {
			return err
		}
		out["group_state"] = described[0].State

		offsets, err := adm.ListConsumerGroupOffsets(name, nil)
		if err != nil {
			return err
		}
		cl, err := sarama.NewClient([]string{bootstrap}, config())
		if err != nil {
			return err
		}
		defer cl.Close()
		committed, lag := map[string]int64{}, map[string]int64{}
		for p, b := range offsets.Blocks[topic] {
			end, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return err
			}
			committed[strconv.Itoa(int(p))] = b.Offset
			lag[strconv.Itoa(int(p))] = end - b.Offset
		}
		out["offsets"], out["lag"] = committed, lag
		driver.PrintJSON(out)
		return nil
	})
}

func records(bootstrap string, args []string) error {
	topic := args[0]
	c := config()
	c.Producer.MaxMessageBytes = 1 << 20
	p, err := sarama.NewSyncProducer([]string{bootstrap}, c)
	if err != nil {
		return err
	}
	defer p.Close()
	specials := driver.Specials()
	for _, s := range specials {
		m := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(s.Value), Timestamp: s.Timestamp}
		if s.Key != nil {
			m.Key = sarama.StringEncoder(*s.Key)
		}
		for _, h := range s.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h[0]), Value: []byte(h[1])})
		}
		if _, _, err := p.SendMessage(m); err != nil {
			return err
		}
	}
	cons, err := sarama.NewConsumer([]string{bootstrap}, c)
	if err != nil {
		return err
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return err
	}
	defer pc.Close()
	for range specials {
		select {
		case m := <-pc.Messages():
			var hs [][2]string
			for _, h := range m.Headers {
				hs = append(hs, [2]string{string(h.Key), string(h.Value)})
			}
			driver.PrintJSON(driver.NewConsumed(m.Key, m.Key == nil, m.Value, hs, m.Timestamp))
		case <-time.After(30 * time.Second):
			return errors.New("timed out reading the records")
		}
	}
	return nil
}

// txn commits a transaction of c0..c4 and aborts one of a0..a4.
func txn(bootstrap string, args []string) error {
	c := config()
	c.Producer.Idempotent = true
	c.Producer.Transaction.ID = "sarama-txn"
	c.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer([]string{bootstrap}, c)
	if err != nil {
		return err
	}
	defer p.Close()
	for _, prefix := range []string{"c", "a"} {
		if err := p.BeginTxn(); err != nil {
			return err
		}
		for i := range 5 {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: args[0], Value: sarama.StringEncoder(fmt.Sprint(prefix, i))}); err != nil {
				return err
			}
		}
		end := p.CommitTxn
		if prefix == "a" {
			end = p.AbortTxn
		}
		if err := end(); err != nil {
			return err
		}
	}
	return nil
}
