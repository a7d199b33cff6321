package room_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/pion/rtcp"
)

func TestConstrainedSubscriberSettlesLowThenClimbs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{})
	startSimulcastPublisher(t, ctx, url, "bw")

	slowLink := newLink()
	slowLink.set(400_000, 0)
	slow := joinSubscriber(t, ctx, url, "bw", "slow", slowLink)
	fast := joinSubscriber(t, ctx, url, "bw", "fast", nil)

	// The constrained one settles on the lowest layer, and stays there
	// for 150 frames (5 s of it) ... Settled means the server holds it on
	// the low layer for bandwidth: a subscriber starts on whichever layer's
	// keyframe comes first, so an early low-layer frame is not a decision.
	wait.Until(t, 30*time.Second, "constrained subscriber held on the low layer", func() (bool, string) {
		d := slow.decision(slow.videoTrackID())
		w := slow.video.lastWidth()
		return w == 320 && d.Current == "low" && d.Target == "low" && d.Reason == "bandwidth",
			fmt.Sprintf("width %d, decision %+v", w, d)
	})
	settled, n := time.Now(), slow.video.media()
	wait.Until(t, 30*time.Second, "150 frames on the low layer", func() (bool, string) {
		if w := slow.video.lastWidth(); w != 320 {
			t.Fatalf("constrained subscriber left the low layer: width %d", w)
		}
		return slow.video.media() >= n+150, fmt.Sprintf("%d packets", slow.video.media()-n)
	})
	// Up to a second ago: later losses may still be being repaired.
	loss, got := slow.video.lossBetween(settled.Add(500*time.Millisecond), time.Now().Add(-time.Second))
	t.Logf("constrained subscriber: %d packets on the low layer, loss %.2f%%, decision %+v", got, loss*100, slow.decision(slow.videoTrackID()))
	if loss >= 0.02 {
		t.Errorf("loss on the low layer %.2f%%, want < 2%%", loss*100)
	}
	// ... while the other keeps the top layer: one slow subscriber does not
	// pull the others down.
	if w := fast.video.lastWidth(); w != 1280 {
		t.Errorf("unconstrained subscriber receives width %d, want 1280", w)
	}

	// Lift the cap: it climbs back to the top.
	slowLink.set(0, 0)
	start := time.Now()
	waitWidth(t, slow, 1280, 60*time.Second, "recovery to the top layer")
	t.Logf("climbed from the low to the top layer %.1f s after the cap was lifted", time.Since(start).Seconds())
}

func TestNACKRepairUnderLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{})
	startSimulcastPublisher(t, ctx, url, "lossy")
	l := newLink()
	sub := joinSubscriber(t, ctx, url, "lossy", "lossy", l)
	id := ""
	wait.Until(t, 10*time.Second, "video track", func() (bool, string) { id = sub.videoTrackID(); return id != "", "" })
	// Keep it on one layer so that the test measures repair, not switching.
	subscribe(t, ctx, sub, signalSub(id, "medium"))
	waitWidth(t, sub, 640, 10*time.Second, "medium layer")
	// 5 % loss until the link has dropped 40 packets (about 6 s of the
	// medium layer): the repairs of the packets received meanwhile must
	// land, leaving less than 1 % of them missing. The range is fixed when
	// the loss stops, so later packets cannot dilute what is missing.
	l.set(0, 0.05)
	start := time.Now()
	wait.Until(t, 30*time.Second, "the link to drop 40 packets", func() (bool, string) {
		passed, dropped := l.counts()
		return dropped >= 40, fmt.Sprintf("dropped %d of %d", dropped, passed+dropped)
	})
	l.set(0, 0)
	end := time.Now()
	passed, dropped := l.counts()
	var loss float64
	var got int
	wait.Until(t, 5*time.Second, "the repairs to land", func() (bool, string) {
		loss, got = sub.video.lossBetween(start, end)
		return loss < 0.01, fmt.Sprintf("residual loss %.2f%% of %d packets", loss*100, got)
	})
	t.Logf("link dropped %d of %d packets (%.1f%%); after NACK repair %d received, residual loss %.2f%%",
		dropped, passed+dropped, 100*float64(dropped)/float64(passed+dropped), got, loss*100)
}

func TestKeyframeRequestsCollapse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	interval := 500 * time.Millisecond
	cfg := room.Config{}
	cfg.SFU.KeyframeInterval = interval
	_, url := startServer(t, cfg)
	_, cam := startSimulcastPublisher(t, ctx, url, "storm")
	var subs []*subscriber
	for i := 0; i < 10; i++ {
		subs = append(subs, joinSubscriber(t, ctx, url, "storm", fmt.Sprintf("v%d", i), nil))
	}
	for _, s := range subs {
		waitWidth(t, s, 1280, 20*time.Second, "top layer")
	}
	// 10 subscribers each ask for a keyframe every 50 ms, 600 requests in
	// all (about 3 s).
	before := cam.plis.Load()
	stormStart := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for sent < 600 {
		<-tick.C
		for _, s := range subs {
			for _, r := range s.PeerConnection().GetReceivers() {
				if tr := r.Track(); tr != nil && tr.Kind().String() == "video" {
					_ = s.PeerConnection().WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
					sent++
				}
			}
		}
	}
	elapsed := time.Since(stormStart)
	got := cam.plis.Load() - before
	// At most one request per interval for the layer being forwarded, plus
	// one for the interval already running.
	limit := int64(elapsed/interval) + 2
	t.Logf("%d PLIs from 10 subscribers in %v reached the publisher as %d (limit %d)", sent, elapsed.Round(time.Millisecond), got, limit)
	if got > limit {
		t.Errorf("publisher got %d keyframe requests, want at most %d", got, limit)
	}
	if got == 0 {
		t.Errorf("no keyframe request reached the publisher")
	}
}
