package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// kafkajs from npm (e2e/clients/kafkajs/driver.js), installed by the test into that
// folder's node_modules (ignored by git) from its package-lock.json. Its lz4 and zstd
// codecs are native modules npm does not build here.
var kafkajsClient = clientSpec{
	name:    "kafkajs",
	test:    "TestClientKafkaJS",
	version: "2.2.4",
	checks:  []check{checkMetadata, checkTopics, checkCodecs, checkGroup, checkAdmin, checkRecords, checkTransactions},
	codecs:  []string{"none", "gzip", "snappy"},
	admin:   []string{"configs", "groups", "offsets", "lag"},
	records: []string{"headers", "timestamps", "null keys", "empty values", "900 KB"},
	notes:   "lz4, zstd (native codec packages)",
	took:    "28 s; transactions 3 s (npm ci not counted)",
}

func TestClientKafkaJS(t *testing.T) {
	runClientSuite(t, &kafkajsClient, kafkajsDriver(t))
}

func TestClientKafkaJSTransactions(t *testing.T) {
	runClientTransactions(t, &kafkajsClient, kafkajsDriver)
}

// kafkajsDriver runs driver.js under node, first installing the packages its
// package-lock.json pins (npm ci) unless node_modules already holds them.
func kafkajsDriver(t testing.TB) clientDriver {
	t.Helper()
	node := requireRuntime(t, "kafkajs", "node")
	npm := requireRuntime(t, "kafkajs", "npm")
	dir := filepath.Join(clientsDir(t), "kafkajs")
	if installedKafkajs(dir) != kafkajsClient.version {
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir, cmd.Env = dir, cleanEnv()
		t.Logf("running: %s (in %s)", commandLine(npm, cmd.Args[1:]), dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	return execDriver{argv: []string{node, "driver.js"}, dir: dir, env: []string{"KAFKAJS_NO_PARTITIONER_WARNING=1"}}
}

// installedKafkajs is the version of kafkajs in dir's node_modules, or "".
func installedKafkajs(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "kafkajs", "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct{ Version string }
	if json.Unmarshal(b, &pkg) != nil {
		return ""
	}
	return pkg.Version
}
