package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestKcat checks that kcat (librdkafka) can produce to, consume from and
// list a topic that is created automatically on first use, as Kafka does
// with auto.create.topics.enable (the dev default).
func TestKcat(t *testing.T) {
	kcat := requireTool(t, "kcat")
	p := StartDev(t)
	const topic = "kcat-topic"

	var lines []string
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("line-%d", i))
	}
	input := strings.Join(lines, "\n") + "\n"
	runTool(t, input, kcat, "-b", p.Addr(), "-P", "-t", topic, "-p", "0")

	out := runTool(t, "", kcat, "-b", p.Addr(), "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q")
	if out != input {
		t.Fatalf("kcat -C read:\n%s\nwant:\n%s", out, input)
	}

	out = runTool(t, "", kcat, "-b", p.Addr(), "-L", "-t", topic)
	for _, want := range []string{`topic "` + topic + `"`, "partition 0,"} {
		if !strings.Contains(out, want) {
			t.Fatalf("kcat -L output lacks %q:\n%s", want, out)
		}
	}
}

// requireTool returns the path of an external program the test needs. If
// it is missing, the test is skipped, except under CI (env CI set), where
// it fails: CI must run every test (scripts/test-deps.sh installs them).
func requireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed and CI is set: run scripts/test-deps.sh", name)
	}
	t.Skipf("%s is not installed (run scripts/test-deps.sh); skipping", name)
	return ""
}

// toolTimeout bounds one run of an external tool.
const toolTimeout = 30 * time.Second

// runTool runs an external program with stdin and returns its stdout,
// failing the test (with stderr) if it exits non-zero or runs longer than
// toolTimeout.
func runTool(t testing.TB, stdin, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timed out after %v)", err, toolTimeout)
		}
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", commandLine(path, args), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
