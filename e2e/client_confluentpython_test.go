package e2e

import (
	"path/filepath"
	"testing"
)

// Python confluent_kafka over librdkafka, Debian's python3-confluent-kafka
// (e2e/clients/python/confluent_driver.py). Version 1.7 has AlterConfigs but not its
// incremental form, which the driver therefore does not use.
//
// Debian's librdkafka 2.0.2 logs "Broker does not support compression type gzip: not
// compressing batch" against Strait, and sends gzip, snappy and lz4 batches
// uncompressed (zstd it compresses; the bundled librdkafka 2.11 of confluent-kafka-go
// compresses all four): those codecs are left out here until that is understood.
var confluentPythonClient = clientSpec{
	name:    "confluent-kafka-python",
	test:    "TestClientConfluentPython",
	version: "1.7.0 (librdkafka 2.0.2)",
	checks:  []check{checkMetadata, checkTopics, checkCodecs, checkGroup, checkAdmin, checkRecords, checkTransactions},
	codecs:  []string{"none", "zstd"},
	admin:   []string{"configs", "groups", "offsets", "lag"},
	records: []string{"headers", "timestamps", "null keys", "empty values", "900 KB"},
	notes:   "gzip, snappy, lz4: librdkafka 2.0.2 sends them uncompressed to Strait (open bug)",
}

func TestClientConfluentPython(t *testing.T) {
	runClientSuite(t, &confluentPythonClient, pythonDriver(t, "confluent_kafka", "confluent_driver.py"))
}

func TestClientConfluentPythonTransactions(t *testing.T) {
	runClientTransactions(t, &confluentPythonClient, func(t testing.TB) clientDriver {
		return pythonDriver(t, "confluent_kafka", "confluent_driver.py")
	})
}

// pythonDriver runs a driver script of e2e/clients/python under Debian's python3,
// once module imports (skipped, or failed under CI, when it does not).
func pythonDriver(t testing.TB, module, script string) clientDriver {
	t.Helper()
	requirePythonModule(t, module)
	dir := filepath.Join(clientsDir(t), "python")
	return execDriver{argv: []string{systemPython, "-u", script}, dir: dir}
}
