package sfu

import (
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain also catches goroutines leaked by tests without their own check.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// checkLeaks fails t if goroutines started during the test outlive it. Call
// it first, so its cleanup runs after every other.
func checkLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// waitFor polls cond until it holds or timeout passes, then fails t with
// what. It waits on a ticker, not a sleep, and stops at the first success.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// subscribe subscribes c's peer to r and returns the DownTrack that
// forwards it.
func subscribe(c *client, r *Receiver) (*DownTrack, error) {
	if err := c.peer.Subscribe(r.ID()); err != nil {
		return nil, err
	}
	return c.peer.DownTrack(r.ID()), nil
}

// receive returns the next value of ch, failing t after timeout.
func receive[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
	var zero T
	return zero
}

// vp8Packet builds a payload: descriptor with 15-bit picture id, TL0PICIDX
// and KEYIDX, then a VP8 frame header (a keyframe's carries w x h).
func vp8Packet(pid uint16, tl0, keyIdx uint8, start, key bool, w, h uint16) []byte {
	b0 := byte(0x80) // X
	if start {
		b0 |= 0x10
	}
	p := []byte{b0, 0x80 | 0x40 | 0x10, 0x80 | byte(pid>>8), byte(pid), tl0, 0x20 | keyIdx}
	frame := make([]byte, 10)
	if !key {
		frame[0] = 0x01
	} else {
		frame[3], frame[4], frame[5] = 0x9d, 0x01, 0x2a
		frame[6], frame[7] = byte(w), byte(w>>8)
		frame[8], frame[9] = byte(h), byte(h>>8)
	}
	return append(p, frame...)
}
