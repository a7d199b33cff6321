package room_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/confab-sfu/confab/loadtest"
	"github.com/confab-sfu/confab/room"
)

// meetingDuration is how long media flows in the good-network meeting
// tests: 20 s by default (eight peers sending and receiving 82 Mbit/s of
// VP8 in one process on a shared machine), a minute with
// CONFAB_MEETING_MINUTE=1 (the load tool runs the same meeting against a
// server process: docs/benchmarks.md).
func meetingDuration(t *testing.T) time.Duration {
	t.Helper()
	if testing.Short() || raceEnabled {
		t.Skip("eight participants at 720p need the machine to themselves: not with -short or -race")
	}
	if os.Getenv("CONFAB_MEETING_MINUTE") != "" {
		return time.Minute
	}
	return 20 * time.Second
}

// runMeeting runs a meeting of n real pion participants on loopback, each
// publishing one camera (one 720p layer of about 1.45 Mbit/s, or three
// simulcast layers) and receiving everyone else's.
func runMeeting(t *testing.T, n int, simulcast bool) *loadtest.Report {
	t.Helper()
	dur := meetingDuration(t)
	ctx, cancel := context.WithTimeout(context.Background(), dur+90*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{})
	rep, err := loadtest.Run(ctx, loadtest.Config{URL: url, Scenario: "meeting", Participants: n, Duration: dur,
		Ramp: 10, Video: true, Simulcast: simulcast, Layer: "auto", Loopback: true})
	if err != nil {
		t.Fatalf("meeting: %v", err)
	}
	first40, _ := rep.DeliveredKbps(0, 40)
	t.Logf("%d participants, %v: full media after p50 %.0f ms, max %.0f ms, never %d; %d pause/resume switches over %d tracks (most %d); padding %.2f %% of media packets; %.1f Mbit/s delivered in the first 40 s; loss after repair %.3f %%",
		n, dur, rep.FullMediaMillis.P50, rep.FullMediaMillis.Max, rep.NotFull, rep.Switches, rep.ForwardedTracks, rep.MaxSwitches,
		rep.PaddingPercent, first40/1000, rep.LossPercent)
	return rep
}

// checkFullMedia asserts that every subscriber of the meeting had its full
// media (every track, on its layer, then 99 % of the video published for it)
// within 10 s of joining.
func checkFullMedia(t *testing.T, rep *loadtest.Report) {
	t.Helper()
	for _, s := range rep.Subscribers {
		if s.FullMediaMillis < 0 || s.FullMediaMillis > 10_000 {
			t.Errorf("%s: full media after %.0f ms (-1: never), want within 10 s; layers %v, server layers %v",
				s.Name, s.FullMediaMillis, s.Layers, s.ServerLayers)
		}
	}
}

// A meeting on a link with no limit: everyone gets everything within 10 s,
// no forwarded track is paused and resumed more than once, and probing
// costs under 3 % of the packets.
func TestMeetingOfEightOnAGoodNetwork(t *testing.T) {
	rep := runMeeting(t, 8, false)
	checkFullMedia(t, rep)
	if rep.ForwardedTracks != 8*7 {
		t.Errorf("%d video tracks forwarded, want 56", rep.ForwardedTracks)
	}
	if rep.MaxSwitches > 1 {
		t.Errorf("a track was paused or resumed %d times, want at most once (%d switches in all)", rep.MaxSwitches, rep.Switches)
	}
	if rep.PaddingPercent >= 3 {
		t.Errorf("padding %.2f %% of media packets, want under 3 %%", rep.PaddingPercent)
	}
}

// Simulcast publishers: every subscriber is on the top layer of every
// camera within 10 s.
func TestSimulcastMeetingReachesTheTopLayer(t *testing.T) {
	rep := runMeeting(t, 4, true)
	checkFullMedia(t, rep)
	for _, s := range rep.Subscribers {
		for i, l := range s.Layers {
			if l != "high" {
				t.Errorf("%s: video %d ended on the %s layer, want high", s.Name, i, l)
			}
		}
	}
}
