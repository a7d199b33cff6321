package sfu

import (
	"log/slog"
	"testing"

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

// subscribe subscribes c's peer to r and returns the DownTrack that
// forwards it.
func subscribe(c *client, r *Receiver) (*DownTrack, error) {
	if err := c.peer.Subscribe(r.ID()); err != nil {
		return nil, err
	}
	return c.peer.DownTrack(r.ID()), nil
}
