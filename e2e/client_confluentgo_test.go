package e2e

import "testing"

// confluent-kafka-go over the librdkafka it bundles (cgo; e2e/clients/confluentgo).
var confluentGoClient = clientSpec{
	name:    "confluent-kafka-go (bundled librdkafka)",
	test:    "TestClientConfluentGo",
	version: "v2.11.1",
	checks:  []check{checkMetadata, checkTopics, checkCodecs, checkGroup, checkAdmin, checkRecords, checkTransactions},
	codecs:  allCodecs,
	admin:   []string{"configs", "groups", "offsets", "lag"},
	records: []string{"headers", "timestamps", "null keys", "empty values", "900 KB"},
	took:    "14 s; transactions 5 s",
}

func TestClientConfluentGo(t *testing.T) {
	runClientSuite(t, &confluentGoClient, goClientDriver(t, "confluentgo"))
}

func TestClientConfluentGoTransactions(t *testing.T) {
	runClientTransactions(t, &confluentGoClient, func(t testing.TB) clientDriver { return goClientDriver(t, "confluentgo") })
}
