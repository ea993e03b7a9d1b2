// Command confluentgo drives confluent-kafka-go, over the librdkafka it bundles,
// through the client matrix's commands (see package driver).
package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/strait-io/strait/e2e/clients/internal/driver"
)

func main() {
	driver.Main("github.com/confluentinc/confluent-kafka-go/v2", map[string]driver.Command{
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

const timeoutMs = 60_000

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), timeoutMs*time.Millisecond)
}

func adminClient(bootstrap string) (*kafka.AdminClient, error) {
	return kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
}

func metadata(bootstrap string, args []string) error {
	adm, err := adminClient(bootstrap)
	if err != nil {
		return err
	}
	defer adm.Close()
	topic := args[0]
	md, err := adm.GetMetadata(&topic, false, timeoutMs)
	if err != nil {
		return err
	}
	var brokers []int32
	for _, b := range md.Brokers {
		brokers = append(brokers, b.ID)
	}
	var parts []map[string]any
	for _, p := range md.Topics[topic].Partitions {
		if p.Error.Code() != kafka.ErrNoError {
			return p.Error
		}
		parts = append(parts, map[string]any{"id": p.ID, "leader": p.Leader, "replicas": p.Replicas, "isr": p.Isrs})
	}
	driver.PrintJSON(map[string]any{"brokers": brokers, "partitions": parts})
	return nil
}

func create(bootstrap string, args []string) error {
	adm, err := adminClient(bootstrap)
	if err != nil {
		return err
	}
	defer adm.Close()
	c, cancel := ctx()
	defer cancel()
	res, err := adm.CreateTopics(c, []kafka.TopicSpecification{{
		Topic: args[0], NumPartitions: driver.Atoi(args[1]), ReplicationFactor: driver.Atoi(args[2]),
	}})
	if err == nil && res[0].Error.Code() != kafka.ErrNoError {
		err = res[0].Error
	}
	return err
}

func deleteTopic(bootstrap string, args []string) error {
	adm, err := adminClient(bootstrap)
	if err != nil {
		return err
	}
	defer adm.Close()
	c, cancel := ctx()
	defer cancel()
	res, err := adm.DeleteTopics(c, []string{args[0]})
	if err == nil && res[0].Error.Code() != kafka.ErrNoError {
		err = res[0].Error
	}
	return err
}

// produceAll produces msgs and waits for every delivery report.
func produceAll(p *kafka.Producer, msgs []*kafka.Message) error {
	deliveries := make(chan kafka.Event, len(msgs))
	for _, m := range msgs {
		for {
			err := p.Produce(m, deliveries)
			if err == nil {
				break
			}
			if err.(kafka.Error).Code() != kafka.ErrQueueFull {
				return err
			}
			p.Flush(100)
		}
	}
	for range msgs {
		select {
		case e := <-deliveries:
			if m := e.(*kafka.Message); m.TopicPartition.Error != nil {
				return m.TopicPartition.Error
			}
		case <-time.After(timeoutMs * time.Millisecond):
			return errors.New("timed out waiting for delivery reports")
		}
	}
	return nil
}

func produce(bootstrap string, args []string) error {
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "compression.codec": args[1],
		"linger.ms": 5, "acks": "all"})
	if err != nil {
		return err
	}
	defer p.Close()
	topic := args[0]
	msgs := make([]*kafka.Message, driver.Atoi(args[2]))
	for i := range msgs {
		msgs[i] = &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key: []byte(driver.Key(i)), Value: []byte(driver.Value(i))}
	}
	return produceAll(p, msgs)
}

// readAll assigns every partition of topic from its start and hands n messages to fn.
func readAll(bootstrap, topic string, n int, fn func(*kafka.Message)) error {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "unused-" + topic,
		"enable.auto.commit": false, "auto.offset.reset": "earliest"})
	if err != nil {
		return err
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, timeoutMs)
	if err != nil {
		return err
	}
	var tps []kafka.TopicPartition
	for _, p := range md.Topics[topic].Partitions {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
	}
	if err := c.Assign(tps); err != nil {
		return err
	}
	deadline := time.Now().Add(timeoutMs * time.Millisecond)
	for n > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out with %d messages to read", n)
		}
		m, err := c.ReadMessage(time.Second)
		if err != nil {
			if err.(kafka.Error).IsTimeout() {
				continue
			}
			return err
		}
		fn(m)
		n--
	}
	return nil
}

func consume(bootstrap string, args []string) error {
	return readAll(bootstrap, args[0], driver.Atoi(args[1]), func(m *kafka.Message) {
		driver.PrintPosition(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Key, m.Value)
	})
}

// group runs two consumers of one group until they have read n messages between
// them, committing each one's reads synchronously before it closes (leaving).
func group(bootstrap string, args []string) error {
	topic, name, n := args[0], args[1], driver.Atoi(args[2])
	seen := driver.NewPositions(n)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	deadline := time.Now().Add(timeoutMs * time.Millisecond)
	for id := range 2 {
		c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": name,
			"enable.auto.commit": false, "auto.offset.reset": "earliest", "client.id": fmt.Sprint("member-", id)})
		if err != nil {
			return err
		}
		if err := c.Subscribe(topic, nil); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			uncommitted := false
			for {
				select {
				case <-seen.Done():
					if uncommitted {
						if _, err := c.Commit(); err != nil {
							errs <- fmt.Errorf("member %d: commit: %w", id, err)
						}
					}
					return
				default:
				}
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("member %d: timed out", id)
					return
				}
				m, err := c.ReadMessage(100 * time.Millisecond)
				if err != nil {
					if err.(kafka.Error).IsTimeout() {
						if uncommitted {
							if _, err := c.Commit(); err != nil {
								errs <- fmt.Errorf("member %d: commit: %w", id, err)
								return
							}
							uncommitted = false
						}
						continue
					}
					errs <- fmt.Errorf("member %d: %w", id, err)
					return
				}
				driver.PrintMember(id, m.TopicPartition.Partition, int64(m.TopicPartition.Offset))
				if _, err := c.CommitMessage(m); err != nil {
					errs <- fmt.Errorf("member %d: commit: %w", id, err)
					return
				}
				seen.Add(m.TopicPartition.Partition, int64(m.TopicPartition.Offset))
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func admin(bootstrap string, args []string) error {
	topic, name, broker := args[0], args[1], args[2]
	adm, err := adminClient(bootstrap)
	if err != nil {
		return err
	}
	defer adm.Close()
	c, cancel := ctx()
	defer cancel()
	out := map[string]any{}
	altered, err := adm.IncrementalAlterConfigs(c, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic,
		Config: []kafka.ConfigEntry{{Name: "retention.ms", Value: "3600000", IncrementalOperation: kafka.AlterConfigOpTypeSet}}}})
	if err == nil && altered[0].Error.Code() != kafka.ErrNoError {
		err = altered[0].Error
	}
	if err != nil {
		return fmt.Errorf("alter configs: %w", err)
	}
	described, err := adm.DescribeConfigs(c, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}, {Type: kafka.ResourceBroker, Name: broker}})
	if err != nil {
		return err
	}
	brokerConfigs := map[string]string{}
	for _, r := range described {
		if r.Error.Code() != kafka.ErrNoError {
			return r.Error
		}
		for name, e := range r.Config {
			if r.Type == kafka.ResourceTopic && name == "retention.ms" {
				out["retention_ms"] = e.Value
			} else if r.Type == kafka.ResourceBroker {
				brokerConfigs[name] = e.Value
			}
		}
	}
	out["broker_configs"] = brokerConfigs

	listed, err := adm.ListConsumerGroups(c)
	if err != nil {
		return err
	}
	var groups []string
	for _, g := range listed.Valid {
		groups = append(groups, g.GroupID)
	}
	out["groups"] = groups
	dg, err := adm.DescribeConsumerGroups(c, []string{name})
	if err != nil {
		return err
	}
	out["group_state"] = dg.ConsumerGroupDescriptions[0].State.String()

	offsets, err := adm.ListConsumerGroupOffsets(c, []kafka.ConsumerGroupTopicPartitions{{Group: name,
		Partitions: []kafka.TopicPartition{{Topic: &topic, Partition: 0}, {Topic: &topic, Partition: 1}}}})
	if err != nil {
		return err
	}
	ends, err := adm.ListOffsets(c, map[kafka.TopicPartition]kafka.OffsetSpec{
		{Topic: &topic, Partition: 0}: kafka.LatestOffsetSpec, {Topic: &topic, Partition: 1}: kafka.LatestOffsetSpec})
	if err != nil {
		return err
	}
	end := map[int32]int64{}
	for tp, info := range ends.ResultInfos {
		end[tp.Partition] = int64(info.Offset)
	}
	committed, lag := map[string]int64{}, map[string]int64{}
	for _, tp := range offsets.ConsumerGroupsTopicPartitions[0].Partitions {
		committed[strconv.Itoa(int(tp.Partition))] = int64(tp.Offset)
		lag[strconv.Itoa(int(tp.Partition))] = end[tp.Partition] - int64(tp.Offset)
	}
	out["offsets"], out["lag"] = committed, lag
	driver.PrintJSON(out)
	return nil
}

func records(bootstrap string, args []string) error {
	topic := args[0]
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "acks": "all"})
	if err != nil {
		return err
	}
	defer p.Close()
	specials := driver.Specials()
	for _, s := range specials {
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Value: s.Value, Timestamp: s.Timestamp}
		if s.Key != nil {
			m.Key = []byte(*s.Key)
		}
		for _, h := range s.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h[0], Value: []byte(h[1])})
		}
		if err := produceAll(p, []*kafka.Message{m}); err != nil {
			return err
		}
	}
	return readAll(bootstrap, topic, len(specials), func(m *kafka.Message) {
		var hs [][2]string
		for _, h := range m.Headers {
			hs = append(hs, [2]string{h.Key, string(h.Value)})
		}
		driver.PrintJSON(driver.NewConsumed(m.Key, m.Key == nil, m.Value, hs, m.Timestamp))
	})
}

// txn commits a transaction of c0..c4 and aborts one of a0..a4.
func txn(bootstrap string, args []string) error {
	topic := args[0]
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "transactional.id": "confluentgo-txn"})
	if err != nil {
		return err
	}
	defer p.Close()
	c, cancel := ctx()
	defer cancel()
	if err := p.InitTransactions(c); err != nil {
		return err
	}
	for _, prefix := range []string{"c", "a"} {
		if err := p.BeginTransaction(); err != nil {
			return err
		}
		var msgs []*kafka.Message
		for i := range 5 {
			msgs = append(msgs, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
				Value: fmt.Appendf(nil, "%s%d", prefix, i)})
		}
		if err := produceAll(p, msgs); err != nil {
			return err
		}
		end := p.CommitTransaction
		if prefix == "a" {
			end = p.AbortTransaction
		}
		if err := end(c); err != nil {
			return err
		}
	}
	return nil
}
