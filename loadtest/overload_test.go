package loadtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/loadtest"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/load"
)

// TestChurnOverloadRefusesRatherThanStarves: churn in three rooms of
// three on a server whose -max-streams fits about two of them. Joins that
// would pass the limit are refused at once and reported apart from
// failures; no join is accepted that then receives nothing (that would be
// a failure), and what the accepted ones receive is clean.
func TestChurnOverloadRefusesRatherThanStarves(t *testing.T) {
	// A full room forwards 3 publishers x 2 tracks x 2 receivers = 12.
	_, url := testserver.Start(t, room.Config{Load: load.Config{Limits: load.Limits{Streams: 26},
		Every: 100 * time.Millisecond, Hold: 500 * time.Millisecond, RetryAfter: time.Second}})
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	rep, err := loadtest.Run(ctx, loadtest.Config{URL: url, Scenario: "churn", Participants: 3, Rooms: 3,
		Duration: 8 * time.Second, Video: true, Layer: "auto", Loopback: true, Ramp: 10})
	if err != nil {
		t.Fatalf("churn under a stream limit: %v (failures %v)", err, rep.Failures)
	}
	if len(rep.Refused) == 0 {
		t.Fatalf("no join refused over the limit (%d joined)", rep.Joined)
	}
	// One freeze is tolerated: on a shared 2-core CI machine a stall of
	// the test process alone makes one (1 run in 3 here); more is a defect.
	if !raceEnabled && (rep.LossPercent >= 0.1 || rep.Freezes > 1) {
		t.Errorf("accepted peers: loss %.3f %%, %d freezes; want under 0.1 %% and none", rep.LossPercent, rep.Freezes)
	}
	t.Logf("%d joined at first, %d churn cycles, %d refused (server busy), %d failed; join p99 %.0f ms, loss %.3f %%, freezes %d",
		rep.Joined, rep.Churn, len(rep.Refused), len(rep.Failures), rep.JoinMillis.P99, rep.LossPercent, rep.Freezes)
}
