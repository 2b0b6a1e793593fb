//go:build unix

package benchloop

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time, user and system, that this process has used so far, or 0 when
// the system does not report it.
func processCPU() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
