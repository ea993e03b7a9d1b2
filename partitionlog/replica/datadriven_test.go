package replica

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata/*.txt")

// A transcript is a sequence of cases separated by blank lines:
//
//	# comments and blank lines between cases are kept as they are
//	command arg key=value ...
//	----
//	expected output
//
// runTranscript runs each command through do and compares its output; with -rewrite
// it writes the actual output back to the file instead.
func runTranscript(t *testing.T, path string, do func(t *testing.T, c cmd) string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); {
		line := lines[i]
		if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "#") {
			out.WriteString(line + "\n")
			i++
			continue
		}
		pos := fmt.Sprintf("%s:%d", filepath.Base(path), i+1)
		c := parseCmd(t, pos, line)
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("%s: expected ---- after %q", pos, line)
		}
		i++
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		got := strings.TrimRight(do(t, c), "\n")
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s: %s\n got:\n%s\nwant:\n%s", pos, line, got, strings.Join(want, "\n"))
		}
		out.WriteString(line + "\n----\n")
		if got != "" {
			out.WriteString(got + "\n")
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cmd is one parsed command line: a name, positional arguments and key=value pairs.
type cmd struct {
	pos  string
	name string
	args []string
	kv   map[string]string
}

func parseCmd(t *testing.T, pos, line string) cmd {
	t.Helper()
	fields := strings.Fields(line)
	c := cmd{pos: pos, name: fields[0], kv: map[string]string{}}
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			c.kv[k] = v
		} else {
			c.args = append(c.args, f)
		}
	}
	return c
}

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			h := &harness{}
			runTranscript(t, f, h.do)
		})
	}
}
