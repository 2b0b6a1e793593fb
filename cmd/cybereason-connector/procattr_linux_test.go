package main

import "syscall"

// killWithParent makes the kernel kill a subprocess when the test process
// dies, so that a test stopped by its timeout leaves no connector or
// cybereason-sim running.
func killWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
