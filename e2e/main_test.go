package e2e

import (
	"fmt"
	"os"
	"testing"
)

// TestMain builds the strait binary once for the whole run and removes it
// afterwards. A build failure does not stop the run: tests that need the
// binary fail with the build output (see StraitBin), and the harness's own
// tests still run.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "strait-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: temp dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	straitBin, buildErr = buildStrait(dir)
	if buildErr != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot build strait: %v\n", buildErr)
	}
	return m.Run()
}
