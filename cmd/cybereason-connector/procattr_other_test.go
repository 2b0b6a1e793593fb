//go:build !linux

package main

import "syscall"

// killWithParent returns nil: outside Linux, subprocesses are stopped only by
// the test's cleanup.
func killWithParent() *syscall.SysProcAttr { return nil }
