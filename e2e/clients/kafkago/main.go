// Command kafkago drives segmentio/kafka-go through the client matrix's commands (see
// package driver). kafka-go has no transactional producer.
package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/strait-io/strait/e2e/clients/internal/driver"
)

func main() {
	driver.Main("github.com/segmentio/kafka-go", map[string]driver.Command{
		"metadata": {Args: 1, Run: metadata},
		"create":   {Args: 3, Run: create},
		"delete":   {Args: 1, Run: deleteTopic},
		"produce":  {Args: 3, Run: produce},
		"consume":  {Args: 2, Run: consume},
		"group":    {Args: 3, Run: group},
		"admin":    {Args: 3, Run: admin},
		"records":  {Args: 1, Run: records},
	})
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 60*time.Second)
}

func topicMetadata(c context.Context, bootstrap, topic string) (*kafka.MetadataResponse, error) {
	cl := &kafka.Client{Addr: kafka.TCP(bootstrap)}
	resp, err := cl.Metadata(c, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, err
	}
	if len(resp.Topics) != 1 || resp.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata of %s: %+v", topic, resp.Topics)
	}
	return resp, nil
}

func metadata(bootstrap string, args []string) error {
	c, cancel := ctx()
	defer cancel()
	resp, err := topicMetadata(c, bootstrap, args[0])
	if err != nil {
		return err
	}
	var brokers []int
	for _, b := range resp.Brokers {
		brokers = append(brokers, b.ID)
	}
	ids := func(bs []kafka.Broker) []int {
		out := []int{}
		for _, b := range bs {
			out = append(out, b.ID)
		}
		return out
	}
	var parts []map[string]any
	for _, p := range resp.Topics[0].Partitions {
		parts = append(parts, map[string]any{"id": p.ID, "leader": p.Leader.ID, "replicas": ids(p.Replicas), "isr": ids(p.Isr)})
	}
	driver.PrintJSON(map[string]any{"brokers": brokers, "partitions": parts})
	return nil
}

func create(bootstrap string, args []string) error {
	c, cancel := ctx()
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(bootstrap)}
	resp, err := cl.CreateTopics(c, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: args[0], NumPartitions: driver.Atoi(args[1]), ReplicationFactor: driver.Atoi(args[2]),
	}}})
	if err != nil {
		return err
	}
	return resp.Errors[args[0]]
}

func deleteTopic(bootstrap string, args []string) error {
	c, cancel := ctx()
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(bootstrap)}
	resp, err := cl.DeleteTopics(c, &kafka.DeleteTopicsRequest{Topics: []string{args[0]}})
	if err != nil {
		return err
	}
	return resp.Errors[args[0]]
}

var codecs = map[string]kafka.Compression{
	"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
}

func produce(bootstrap string, args []string) error {
	codec, ok := codecs[args[1]]
	if !ok {
		return fmt.Errorf("codec %q", args[1])
	}
	w := &kafka.Writer{Addr: kafka.TCP(bootstrap), Topic: args[0], Balancer: &kafka.Hash{},
		Compression: codec, RequiredAcks: kafka.RequireAll, BatchSize: 500, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	n := driver.Atoi(args[2])
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(driver.Key(i)), Value: []byte(driver.Value(i))}
	}
	c, cancel := ctx()
	defer cancel()
	return w.WriteMessages(c, msgs...)
}

// readPartitions reads every partition of topic from its start until n messages
// were handed to fn.
func readPartitions(bootstrap, topic string, n int, fn func(kafka.Message)) error {
	c, cancel := ctx()
	defer cancel()
	resp, err := topicMetadata(c, bootstrap, topic)
	if err != nil {
		return err
	}
	msgs, errs := make(chan kafka.Message), make(chan error, len(resp.Topics[0].Partitions))
	for _, p := range resp.Topics[0].Partitions {
		// A Reader's Close waits out the long poll in flight, up to MaxWait (10s by default).
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, Topic: topic, Partition: p.ID,
			MaxBytes: 4 << 20, MaxWait: 500 * time.Millisecond})
		defer r.Close()
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			return err
		}
		go func() {
			for {
				m, err := r.ReadMessage(c)
				if err != nil {
					errs <- err
					return
				}
				select {
				case msgs <- m:
				case <-c.Done():
					return
				}
			}
		}()
	}
	for ; n > 0; n-- {
		select {
		case m := <-msgs:
			fn(m)
		case err := <-errs:
			return err
		}
	}
	return nil
}

func consume(bootstrap string, args []string) error {
	return readPartitions(bootstrap, args[0], driver.Atoi(args[1]), func(m kafka.Message) {
		driver.PrintPosition(int32(m.Partition), m.Offset, m.Key, m.Value)
	})
}

// group runs two Readers of one group until they have read n messages between them;
// each commits what it reads (synchronously: CommitInterval 0) and leaves on Close.
func group(bootstrap string, args []string) error {
	topic, name, n := args[0], args[1], driver.Atoi(args[2])
	seen := driver.NewPositions(n)
	c, cancel := ctx()
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for id := range 2 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, GroupID: name, Topic: topic,
			StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
		mctx, stop := context.WithCancel(c)
		go func() {
			select {
			case <-seen.Done():
			case <-c.Done():
			}
			stop()
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.FetchMessage(mctx)
				if err != nil {
					if mctx.Err() == nil || c.Err() != nil {
						errs <- fmt.Errorf("member %d: %w", id, err)
					}
					return
				}
				driver.PrintMember(id, int32(m.Partition), m.Offset)
				if err := r.CommitMessages(c, m); err != nil {
					errs <- fmt.Errorf("member %d: commit: %w", id, err)
					return
				}
				seen.Add(int32(m.Partition), m.Offset)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func admin(bootstrap string, args []string) error {
	topic, name, broker := args[0], args[1], args[2]
	c, cancel := ctx()
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(bootstrap)}
	out := map[string]any{}
	altered, err := cl.IncrementalAlterConfigs(c, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "retention.ms", Value: "3600000", ConfigOperation: kafka.ConfigOperationSet}},
	}}})
	if err == nil && len(altered.Resources) == 1 {
		err = altered.Resources[0].Error
	}
	if err != nil {
		return fmt.Errorf("alter configs: %w", err)
	}
	described, err := cl.DescribeConfigs(c, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"}},
		{ResourceType: kafka.ResourceTypeBroker, ResourceName: broker},
	}})
	if err != nil {
		return err
	}
	brokerConfigs := map[string]string{}
	for _, r := range described.Resources {
		if r.Error != nil {
			return r.Error
		}
		for _, e := range r.ConfigEntries {
			if r.ResourceType == int8(kafka.ResourceTypeTopic) {
				out["retention_ms"] = e.ConfigValue
			} else {
				brokerConfigs[e.ConfigName] = e.ConfigValue
			}
		}
	}
	out["broker_configs"] = brokerConfigs

	listed, err := cl.ListGroups(c, &kafka.ListGroupsRequest{})
	if err == nil {
		err = listed.Error
	}
	if err != nil {
		return err
	}
	var groups []string
	for _, g := range listed.Groups {
		groups = append(groups, g.GroupID)
	}
	out["groups"] = groups
	dg, err := cl.DescribeGroups(c, &kafka.DescribeGroupsRequest{GroupIDs: []string{name}})
	if err != nil {
		return err
	}
	out["group_state"] = dg.Groups[0].GroupState

	fetched, err := cl.OffsetFetch(c, &kafka.OffsetFetchRequest{GroupID: name, Topics: map[string][]int{topic: {0, 1}}})
	if err == nil {
		err = fetched.Error
	}
	if err != nil {
		return err
	}
	ends, err := cl.ListOffsets(c, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0), kafka.LastOffsetOf(1)}}})
	if err != nil {
		return err
	}
	end := map[int]int64{}
	for _, p := range ends.Topics[topic] {
		end[p.Partition] = p.LastOffset
	}
	committed, lag := map[string]int64{}, map[string]int64{}
	for _, p := range fetched.Topics[topic] {
		committed[strconv.Itoa(p.Partition)] = p.CommittedOffset
		lag[strconv.Itoa(p.Partition)] = end[p.Partition] - p.CommittedOffset
	}
	out["offsets"], out["lag"] = committed, lag
	driver.PrintJSON(out)
	return nil
}

func records(bootstrap string, args []string) error {
	topic := args[0]
	w := &kafka.Writer{Addr: kafka.TCP(bootstrap), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	c, cancel := ctx()
	defer cancel()
	specials := driver.Specials()
	for _, s := range specials {
		m := kafka.Message{Value: s.Value, Time: s.Timestamp}
		if s.Key != nil {
			m.Key = []byte(*s.Key)
		}
		for _, h := range s.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h[0], Value: []byte(h[1])})
		}
		if err := w.WriteMessages(c, m); err != nil {
			return err
		}
	}
	read := 0
	err := readPartitions(bootstrap, topic, len(specials), func(m kafka.Message) {
		var hs [][2]string
		for _, h := range m.Headers {
			hs = append(hs, [2]string{h.Key, string(h.Value)})
		}
		driver.PrintJSON(driver.NewConsumed(m.Key, m.Key == nil, m.Value, hs, m.Time))
		read++
	})
	if err == nil && read != len(specials) {
		err = errors.New("records missing")
	}
	return err
}
