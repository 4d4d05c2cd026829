//go:build !unix

package dhttest

import "time"

// cpuTime is 0 where the process CPU time is not read (the benchmark's
// CPU figures then read 0).
func cpuTime() time.Duration { return 0 }
