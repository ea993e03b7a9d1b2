//go:build !linux

package e2e

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; a crashed test run
// may leave children behind there.
func sysProcAttr() *syscall.SysProcAttr { return nil }
