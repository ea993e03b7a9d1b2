package e2e

import "testing"

// segmentio/kafka-go (e2e/clients/kafkago). It has no transactional producer.
var kafkagoClient = clientSpec{
	name:    "kafka-go (segmentio/kafka-go)",
	test:    "TestClientKafkaGo",
	version: "v0.4.51",
	checks:  []check{checkMetadata, checkTopics, checkCodecs, checkGroup, checkAdmin, checkRecords},
	codecs:  allCodecs,
	admin:   []string{"configs", "groups", "offsets", "lag"},
	records: []string{"headers", "timestamps", "null keys", "empty values", "900 KB"},
	notes:   "transactions",
	took:    "17 s",
}

func TestClientKafkaGo(t *testing.T) {
	runClientSuite(t, &kafkagoClient, goClientDriver(t, "kafkago"))
}
