package room

import (
	"slices"
	"testing"
	"time"
)

// A layer resumes at once when wanted, pauses only after it has been
// unwanted for layerIdleBeforePause, and the lowest is never paused.
func TestPublisherLayersHoldBeforePausing(t *testing.T) {
	t0 := time.Unix(1000, 0)
	declared := []int{0, 1, 2}
	st := &publisherLayers{active: declared}
	step := func(at time.Duration, wanted []int, want []int) {
		t.Helper()
		got := st.next(declared, wanted, t0.Add(at))
		st.active = got
		if !slices.Equal(got, want) {
			t.Fatalf("at %v wanting %v: sending %v, want %v", at, wanted, got, want)
		}
	}
	step(0, nil, []int{0, 1, 2})
	step(2*time.Second, []int{0}, []int{0, 1, 2})
	step(layerIdleBeforePause, []int{0}, []int{0})
	step(layerIdleBeforePause+time.Second, []int{2}, []int{0, 2})
	// Layer 2 starts waiting when it stops being wanted (at 10 s), not
	// when layer 1 did.
	step(10*time.Second, []int{1}, []int{0, 1, 2})
	step(12*time.Second, nil, []int{0, 1, 2})
	step(12*time.Second+layerIdleBeforePause, nil, []int{0})
}
