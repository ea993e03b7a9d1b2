package e2e

import (
	"path/filepath"
	"testing"
)

// Python confluent_kafka over librdkafka, Debian's python3-confluent-kafka
// (e2e/clients/python/confluent_driver.py). Version 1.7 has AlterConfigs but not its
// incremental form, which the driver therefore does not use.
//
// Its librdkafka, 2.0.2, compresses gzip, snappy and lz4 only for a broker that lists
// Produce v0 in ApiVersions; Strait does (wire.Advertised), so every codec is checked
// to arrive compressed.
var confluentPythonClient = clientSpec{
	name:    "confluent-kafka-python",
	test:    "TestClientConfluentPython",
	version: "1.7.0 (librdkafka 2.0.2)",
	checks:  []check{checkMetadata, checkTopics, checkCodecs, checkGroup, checkAdmin, checkRecords, checkTransactions},
	codecs:  allCodecs,
	admin:   []string{"configs", "groups", "offsets", "lag"},
	records: []string{"headers", "timestamps", "null keys", "empty values", "900 KB"},
	took:    "19 s; transactions 4 s",
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
