// Command strait is Strait's one binary: a Kafka-compatible streaming system.
//
//	strait dev       one process: proxy, partition-log nodes and metadata store
//	strait node      a partition-log node of a cluster whose metadata is in Redis
//	strait proxy     a Kafka-protocol proxy of such a cluster
//	strait bench     produce and consume load against a running cluster
//	strait log       check partition data on disk (log verify)
//	strait version   print the version
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `strait: a Kafka-compatible streaming system

Usage:
  strait dev [flags]       run proxy, nodes and metadata in one process
  strait node [flags]      run a partition-log node of a cluster (metadata in Redis)
  strait proxy [flags]     run a Kafka-protocol proxy of a cluster (metadata in Redis)
  strait bench [flags]     measure produce and consume throughput
  strait log verify DIR    check the segments, indexes and checkpoints of the
                           partitions under DIR (a stopped node's data directory)
  strait version           print the version

Run "strait <command> -h" for a command's flags. Every flag can also be set with
an environment variable: --data-dir is STRAIT_DATA_DIR.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "strait:", err)
		}
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "dev":
		return runDev(args[1:])
	case "node":
		return runNode(args[1:])
	case "proxy":
		return runProxy(args[1:])
	case "bench":
		return runBench(args[1:])
	case "log":
		return runLog(args[1:])
	case "version", "--version", "-v":
		fmt.Println("strait", version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
