//go:build unix

package main

import "syscall"

// nodePartitionLimit is what a node registers it can hold (Kafka's
// max.broker.partitions): the flag's value, or by default the process's descriptor limit
// shared among the nodes of the process. A partition needs a descriptor whenever it is
// read or written; partitionlog keeps idle ones closed, but a node asked to hold more
// busy partitions than it has descriptors would spend its time reopening files, or fail
// to open them, and lose its lease.
func nodePartitionLimit(flag, nodesInProcess int) int {
	if flag > 0 {
		return flag
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 0 // unknown: no limit rather than a guess
	}
	// Go raises the soft limit to the hard one at start (Linux, Go 1.19+).
	return int(min(rl.Cur, 1<<30)) / max(nodesInProcess, 1)
}
