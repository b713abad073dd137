//go:build unix

package emulator_test

import (
	"syscall"
	"time"
)

// lcCPU is the CPU time (user and system) the process has used.
func lcCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
