//go:build unix

package partitionlog

import "syscall"

// processFileLimit returns the soft limit on open descriptors (RLIMIT_NOFILE).
func processFileLimit() (int64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 0, false
	}
	return int64(min(rl.Cur, 1<<40)), true
}
