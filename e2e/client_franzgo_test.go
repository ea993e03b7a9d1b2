package e2e

import "testing"

// franz-go, the client Strait's own tests and tools use (e2e/clients/franzgo).
var franzgoClient = clientSpec{
	name:    "franz-go (kgo, kadm)",
	test:    "TestClientFranzGo",
	version: "v1.22.2",
	checks:  []check{checkMetadata, checkTopics, checkCodecs, checkGroup, checkAdmin, checkRecords, checkTransactions},
	codecs:  allCodecs,
	admin:   []string{"configs", "groups", "offsets", "lag"},
	records: []string{"headers", "timestamps", "null keys", "empty values", "900 KB"},
	took:    "12 s; transactions 4 s",
}

func TestClientFranzGo(t *testing.T) {
	runClientSuite(t, &franzgoClient, goClientDriver(t, "franzgo"))
}

func TestClientFranzGoTransactions(t *testing.T) {
	runClientTransactions(t, &franzgoClient, func(t testing.TB) clientDriver { return goClientDriver(t, "franzgo") })
}
