package e2e

import "testing"

// kafka-python, the pure-Python client, Debian's python3-kafka
// (e2e/clients/python/kafkapython_driver.py). It compresses snappy, lz4 and zstd with
// optional modules (Debian's python3-snappy, python3-lz4, python3-zstandard), which the
// suite requires as it requires kafka itself. Version 2.0.2 has no transactional
// producer, and AlterConfigs but not its incremental form.
var kafkaPythonClient = clientSpec{
	name:    "kafka-python",
	test:    "TestClientKafkaPython",
	version: "2.0.2",
	checks:  []check{checkMetadata, checkTopics, checkCodecs, checkGroup, checkAdmin, checkRecords},
	codecs:  allCodecs,
	admin:   []string{"configs", "groups", "offsets", "lag"},
	records: []string{"headers", "timestamps", "null keys", "empty values", "900 KB"},
	notes:   "transactions: kafka-python 2.0.2 has no transactional producer",
	took:    "18 s",
}

func TestClientKafkaPython(t *testing.T) {
	for codec, module := range map[string]string{"snappy": "snappy", "lz4": "lz4.frame", "zstd": "zstandard"} {
		t.Logf("kafka-python compresses %s with the Python module %s", codec, module)
		requirePythonModule(t, module)
	}
	runClientSuite(t, &kafkaPythonClient, pythonDriver(t, "kafka", "kafkapython_driver.py"))
}
