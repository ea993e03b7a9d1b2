package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// straitBin is the strait binary under test, set by TestMain. buildErr is
// why it could not be built; tests that need the binary fail with it, while
// tests of the harness itself still run.
var (
	straitBin string
	buildErr  error
)

// StraitBin returns the path of the strait binary, failing the test if it
// could not be built.
func StraitBin(t testing.TB) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("strait binary: %v", buildErr)
	}
	if straitBin == "" {
		t.Fatalf("strait binary: not built (TestMain did not run?)")
	}
	return straitBin
}

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// buildGo runs `go build -o out [flags] pkg` in dir and returns its output
// in the error on failure.
func buildGo(dir, pkg, out string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, output)
	}
	return nil
}

// buildStrait builds ./cmd/strait into dir and returns the binary's path.
// STRAIT_BIN names a prebuilt binary to use instead; STRAIT_E2E_RACE=1
// builds with the race detector.
func buildStrait(dir string) (string, error) {
	if bin := os.Getenv("STRAIT_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("STRAIT_BIN: %w", err)
		}
		return abs, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	var flags []string
	if os.Getenv("STRAIT_E2E_RACE") == "1" {
		flags = append(flags, "-race")
	}
	out := filepath.Join(dir, "strait")
	if err := buildGo(root, "./cmd/strait", out, flags...); err != nil {
		return "", err
	}
	return out, nil
}
