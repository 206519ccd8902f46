//go:build !unix

package bench

import "time"

// processCPU is zero where getrusage is missing: the CPU figures of the
// multi-process scenarios then read 0.
func processCPU() time.Duration { return 0 }
