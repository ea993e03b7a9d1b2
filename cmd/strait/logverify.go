package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/strait-io/strait/partitionlog"
)

// `strait log verify DIR...` is for operators who suspect a disk: it reads every segment of
// every partition under DIR (a partition directory, or a node's data directory) and checks
// batches, offsets, indexes and checkpoints (partitionlog.Verify), printing progress once a
// second on large logs and a summary per partition. It changes nothing. The exit status is
// non-zero when anything is wrong; each problem names the file and the byte position.

const logUsage = `Usage:
  strait log verify [flags] DIR...   check the partitions under each DIR (a partition
                                     directory or a node's data directory); run it on a
                                     stopped node: appends look like torn batches
`

// runLog dispatches the log subcommands.
func runLog(args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(os.Stderr, logUsage)
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			return flag.ErrHelp
		}
		return fmt.Errorf("log: unknown subcommand %q", args[0])
	}
	return runLogVerify(args[1:], os.Stdout, os.Stderr)
}

// logVerifyConfig is what `strait log verify` can be told.
type logVerifyConfig struct {
	Compacted bool
	Quiet     bool
	Dirs      []string
}

func (c *logVerifyConfig) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Compacted, "compacted", false, "allow gaps between offsets, as in compacted topics (assumed where a cleaner-offset-checkpoint exists)")
	fs.BoolVar(&c.Quiet, "quiet", false, "print only problems and the final summary")
}

// runLogVerify verifies each partition under the directories in args; out gets the
// results, progress goes to errOut.
func runLogVerify(args []string, out, errOut io.Writer) error {
	var cfg logVerifyConfig
	fset := flag.NewFlagSet("log verify", flag.ContinueOnError)
	fset.SetOutput(errOut)
	fset.Usage = func() { fmt.Fprint(errOut, logUsage, "\nFlags:\n"); fset.PrintDefaults() }
	cfg.flags(fset)
	if err := fset.Parse(args); err != nil {
		return err
	}
	cfg.Dirs = fset.Args()
	if len(cfg.Dirs) == 0 {
		fset.Usage()
		return errors.New("log verify: no directory given")
	}
	var parts []string
	for _, dir := range cfg.Dirs {
		found, err := partitionDirs(dir)
		if err != nil {
			return fmt.Errorf("log verify: %w", err)
		}
		if len(found) == 0 {
			return fmt.Errorf("log verify: no partition (a directory of NNNNNNNNNNNNNNNNNNNN.log segments) under %s", dir)
		}
		parts = append(parts, found...)
	}
	bad := 0
	for _, dir := range parts {
		res, err := partitionlog.Verify(dir, partitionlog.VerifyOptions{Compacted: cfg.Compacted, Progress: printProgress(errOut)})
		if err != nil {
			return fmt.Errorf("log verify: %w", err)
		}
		if !res.OK() {
			bad++
		}
		printVerifyResult(out, res, cfg.Quiet)
	}
	fmt.Fprintf(out, "verified %d partitions: %d with problems\n", len(parts), bad)
	if bad > 0 {
		return fmt.Errorf("log verify: %d of %d partitions have problems (see above); a replicated partition can be refetched from another replica: stop the node, move the partition directory away, and restart it", bad, len(parts))
	}
	return nil
}

// partitionDirs returns dir itself when it holds segments, else every directory under it
// that does, in lexical order.
func partitionDirs(dir string) ([]string, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && partitionlog.IsPartitionDir(path) {
			out = append(out, path)
		}
		return nil
	})
	return out, err
}

// printProgress prints Verify's progress, which it reports at most once a second, for
// logs large enough to take that long.
func printProgress(w io.Writer) func(partitionlog.VerifyProgress) {
	start := time.Now()
	return func(p partitionlog.VerifyProgress) {
		if p.Done {
			return
		}
		pct := 100.0
		if p.BytesTotal > 0 {
			pct = 100 * float64(p.BytesChecked) / float64(p.BytesTotal)
		}
		fmt.Fprintf(w, "verifying %s: %s of %s (%.0f%%) in %v\n", filepath.Base(p.File),
			byteCount(p.BytesChecked), byteCount(p.BytesTotal), pct, time.Since(start).Round(time.Second))
	}
}

func printVerifyResult(w io.Writer, res partitionlog.VerifyResult, quiet bool) {
	if res.OK() {
		if !quiet {
			fmt.Fprintf(w, "ok   %s: %d segments, %d batches, %d records, offsets [%d, %d), %s\n",
				res.Dir, res.Segments, res.Batches, res.Records, max(res.StartOffset, 0), max(res.EndOffset, 0), byteCount(res.Bytes))
		}
		return
	}
	fmt.Fprintf(w, "FAIL %s: %d problems in %d segments, %d batches\n", res.Dir, len(res.Problems), res.Segments, res.Batches)
	for _, p := range res.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

func byteCount(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
