package e2e

import "testing"

// IBM/sarama, Go's oldest Kafka client (e2e/clients/sarama). It does not negotiate a
// protocol version: the driver sets Version to 3.6, as users must.
var saramaClient = clientSpec{
	name:    "sarama (IBM/sarama)",
	test:    "TestClientSarama",
	version: "v1.61.1",
	checks:  []check{checkMetadata, checkTopics, checkCodecs, checkGroup, checkAdmin, checkRecords, checkTransactions},
	codecs:  allCodecs,
	admin:   []string{"configs", "groups", "offsets", "lag"},
	records: []string{"headers", "timestamps", "null keys", "empty values", "900 KB"},
	took:    "20 s; transactions 4 s",
}

func TestClientSarama(t *testing.T) {
	runClientSuite(t, &saramaClient, goClientDriver(t, "sarama"))
}

func TestClientSaramaTransactions(t *testing.T) {
	runClientTransactions(t, &saramaClient, func(t testing.TB) clientDriver { return goClientDriver(t, "sarama") })
}
