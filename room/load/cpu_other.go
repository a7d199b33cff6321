//go:build !unix

package load

import "time"

// processCPU is not measured on this platform: the CPU limit never binds.
func processCPU() time.Duration { return 0 }
