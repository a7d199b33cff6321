package cluster

import (
	"runtime"
	"sync"
	"time"
)

// CPUSampler measures the process's share of the machine's CPUs between
// two calls of Fraction, for Load.CPU.
type CPUSampler struct {
	mu       sync.Mutex
	lastWall time.Time
	lastCPU  time.Duration
}

// NewCPUSampler starts measuring from now.
func NewCPUSampler() *CPUSampler {
	return &CPUSampler{lastWall: time.Now(), lastCPU: processCPU()}
}

// Fraction is the CPU time the process used since the previous call (or
// NewCPUSampler), divided by the wall time and the number of CPUs: 0..1.
// It is 0 where the platform does not report process CPU time.
func (s *CPUSampler) Fraction() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	now, cpu := time.Now(), processCPU()
	wall := now.Sub(s.lastWall)
	used := cpu - s.lastCPU
	s.lastWall, s.lastCPU = now, cpu
	if wall <= 0 || used <= 0 {
		return 0
	}
	return min(used.Seconds()/wall.Seconds()/float64(runtime.NumCPU()), 1)
}
