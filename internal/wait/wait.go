// Package wait lets tests wait for what they can observe (a counter, a
// table, an event on a channel) with a deadline, instead of sleeping and
// then asserting: a test that waits on the condition is as fast as the
// code allows and fails only when the condition never holds.
package wait

import (
	"testing"
	"time"
)

// tick is how often a condition is polled: often enough to add little to
// a test, rarely enough to cost nothing.
const tick = 10 * time.Millisecond

// For polls cond until it holds and returns how long that took; after
// timeout it fails t, naming what it waited for.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Until(t, timeout, what, func() (bool, string) { return cond(), "" })
}

// Until is For with a reason: cond says why it does not hold yet, and the
// failure reports its last answer.
func Until(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		select {
		case <-deadline.C:
			if why != "" {
				t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
			}
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-ticker.C:
		}
	}
}

// Recv returns the next value from ch; after timeout it fails t.
func Recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case v := <-ch:
		return v
	case <-deadline.C:
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
	var zero T
	return zero
}
