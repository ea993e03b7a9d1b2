package e2e

import "syscall"

// sysProcAttr makes the kernel kill a child if the test binary dies first
// (a panic, a -timeout), so no strait process outlives its test run holding
// ports and files. The signal fires when the OS thread that started the child
// ends; Go ends a thread only when a goroutine locked to it (LockOSThread)
// exits, which the harness's goroutines never do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
