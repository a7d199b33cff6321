package sfu

import (
	"testing"
	"time"
)

func TestProberRaisesFloorOnlyWithoutCongestion(t *testing.T) {
	var p prober
	now := time.Unix(0, 0)
	p.start(now, 300_000, 450_000)
	if !p.active {
		t.Fatal("probe did not start")
	}
	// Clean feedback through the probe: the goal becomes the floor.
	est := p.update(now.Add(250*time.Millisecond), 300_000, 300_000, 0, true)
	est = p.update(now.Add(probeLength), 300_000, 300_000, 0.01, true)
	if p.active || est != 450_000 || p.floor != 450_000 {
		t.Fatalf("after a clean probe: active %v est %d floor %d", p.active, est, p.floor)
	}
	// Loss during the next probe fails it and backs off.
	now = now.Add(probeLength)
	p.start(now, est, 675_000)
	p.update(now.Add(probeLength), 300_000, 300_000, 0.05, true)
	if p.active || p.floor != 450_000 || !p.next.After(now.Add(probeLength)) {
		t.Fatalf("failed probe: active %v floor %d next %v", p.active, p.floor, p.next)
	}
	// A falling GCC estimate is congestion: the floor goes.
	if est := p.update(now.Add(3*time.Second), 200_000, 300_000, 0, false); est != 200_000 || p.floor != 0 {
		t.Fatalf("congestion kept the floor: est %d floor %d", est, p.floor)
	}
	// Backoff doubles up to the cap.
	for i := 0; i < 10; i++ {
		at := now.Add(time.Duration(10+i) * 10 * time.Second)
		p.start(at, 100, 200)
		p.update(at.Add(probeLength), 100, 100, 0.5, true)
	}
	if p.backoff != probeMaxBackoff {
		t.Fatalf("backoff %v, want %v", p.backoff, probeMaxBackoff)
	}
	// No feedback at all: nothing is capped.
	if est := p.update(now, 0, 0, 0, false); est != 0 {
		t.Fatalf("unknown estimate became %d", est)
	}
}

func TestRewriterInsertKeepsStreamContinuous(t *testing.T) {
	r := rewriter{clockRate: 90000}
	if _, _, ok := r.insert(); ok {
		t.Fatal("padding before the stream started")
	}
	r.startSegment(10, 1000, 0)
	r.rewrite(10, 1000, 0)
	r.rewrite(11, 1000, 0)
	p1, ts, _ := r.insert()
	p2, _, _ := r.insert()
	if p1 != 12 || p2 != 13 || ts != 1000 {
		t.Fatalf("padding got %d,%d ts %d", p1, p2, ts)
	}
	if seq, _, ok := r.rewrite(12, 4000, 1); !ok || seq != 14 {
		t.Fatalf("next media packet: %d %v", seq, ok)
	}
	if _, _, ok := r.rewrite(11, 1000, 1); ok {
		t.Fatal("a packet from before the padding was placed again")
	}
}
