package sfu

import (
	"testing"
	"time"
)

func TestProberRaisesFloorOnlyWithoutCongestion(t *testing.T) {
	var p prober
	now := time.Unix(0, 0)
	if g := p.goalFor(300_000, 10_000_000); g != 375_000 {
		t.Fatalf("goal %d, want a first step of 5/4", g)
	}
	p.start(now, 300_000, 375_000)
	if !p.active {
		t.Fatal("probe did not start")
	}
	// Clean feedback through the probe and the settling after it: the goal
	// becomes the floor, and only then.
	p.update(now.Add(250*time.Millisecond), 300_000, 300_000, 0, true)
	est := p.update(now.Add(probeLength), 300_000, 300_000, 0.01, true)
	if p.active || !p.settling || est != 300_000 {
		t.Fatalf("padding over: active %v settling %v est %d", p.active, p.settling, est)
	}
	est = p.update(now.Add(probeLength+probeSettle), 300_000, 300_000, 0, true)
	if p.busy() || est != 375_000 || p.floor != 375_000 {
		t.Fatalf("after a clean probe: busy %v est %d floor %d", p.busy(), est, p.floor)
	}
	// A success makes the next step bigger, capped by what is wanted.
	if g := p.goalFor(375_000, 10_000_000); g != 562_500 {
		t.Fatalf("goal after a success %d, want a step of 3/2", g)
	}
	if g := p.goalFor(375_000, 450_000); g != 500_001 {
		t.Fatalf("goal %d, want what the tracks need plus headroom", g)
	}
	// Loss during the next probe stops it at once and backs off.
	now = now.Add(time.Second)
	p.start(now, est, 468_000)
	p.update(now.Add(250*time.Millisecond), 300_000, 300_000, 0.05, true)
	if p.busy() || !p.next.After(now.Add(time.Second)) || p.streak != 0 {
		t.Fatalf("failed probe: busy %v next %v streak %d", p.busy(), p.next, p.streak)
	}
	// ... and since the floor held the estimate above GCC, it goes too.
	if p.floor != 0 {
		t.Fatalf("loss above GCC kept the floor %d", p.floor)
	}
	// A probe without any feedback teaches nothing: no floor.
	now = now.Add(10 * time.Second)
	p.start(now, 300_000, 375_000)
	p.update(now.Add(probeLength), 300_000, 300_000, 0, false)
	p.update(now.Add(probeLength+probeSettle), 300_000, 300_000, 0, false)
	if p.busy() || p.floor != 0 {
		t.Fatalf("probe without feedback: busy %v floor %d", p.busy(), p.floor)
	}
	// A falling GCC estimate is congestion: the floor goes.
	p.floor = 375_000
	if est := p.update(now.Add(20*time.Second), 200_000, 300_000, 0, false); est != 200_000 || p.floor != 0 {
		t.Fatalf("congestion kept the floor: est %d floor %d", est, p.floor)
	}
	// Small loss under GCC's own estimate leaves a floor below it alone.
	p.floor = 150_000
	p.update(now.Add(21*time.Second), 300_000, 300_000, 0.05, true)
	if p.floor != 150_000 {
		t.Fatalf("loss below the floor dropped it")
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
