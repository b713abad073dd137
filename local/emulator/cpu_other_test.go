//go:build !unix

package emulator_test

import "time"

// lcCPU is 0 where the process's CPU time is not at hand.
func lcCPU() time.Duration { return 0 }
