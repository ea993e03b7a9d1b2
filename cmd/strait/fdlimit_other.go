//go:build !unix

package main

// nodePartitionLimit is the flag's value; without a descriptor limit to size it from,
// 0 (no limit).
func nodePartitionLimit(flag, _ int) int { return max(flag, 0) }
