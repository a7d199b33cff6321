package cluster

import (
	"runtime"
	"testing"
	"time"
)

func TestCPUSamplerSeesWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("process CPU time is not measured here")
	}
	s := NewCPUSampler()
	x := 0
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
		x++ // busy: this goroutine uses CPU for the whole 100 ms
	}
	f := s.Fraction()
	if f <= 0 || f > 1 {
		t.Errorf("Fraction after 100 ms of busy work = %v, want in (0, 1] (x=%d)", f, x)
	}
	t.Logf("one busy goroutine on %d CPUs: %.2f", runtime.NumCPU(), f)
}
