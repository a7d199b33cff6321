package probe

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Unix(1000, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

// step is one allocation period: optionally start a probe toward goal, then
// update with the period's signals and check the outcome.
type step struct {
	at       time.Duration
	goal     int64 // > 0: Start(at, gcc, goal) first
	gcc      int64
	loss     float64
	haveLoss bool
	queuing  time.Duration // with measured: the path's queuing delay
	measured bool
	wantEst  int64
	wantPad  bool // Padding() after the update
	wantBusy bool
}

func TestProber(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name      string
		steps     []step
		wantFloor int64
	}{
		{"a clean probe becomes a floor once its feedback is in", []step{
			{at: 0, goal: 375_000, gcc: 300_000, haveLoss: true, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 250 * ms, gcc: 300_000, haveLoss: true, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 500 * ms, gcc: 300_000, loss: 0.01, haveLoss: true, wantEst: 300_000, wantBusy: true}, // settling
			{at: 750 * ms, gcc: 300_000, haveLoss: true, wantEst: 375_000},
			{at: 1000 * ms, gcc: 320_000, haveLoss: true, wantEst: 375_000},
		}, 375_000},
		{"loss during a probe stops it at once", []step{
			{at: 0, goal: 375_000, gcc: 300_000, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 250 * ms, gcc: 300_000, loss: 0.05, haveLoss: true, wantEst: 300_000},
		}, 0},
		{"a falling estimate during a probe stops it", []step{
			{at: 0, goal: 375_000, gcc: 300_000, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 250 * ms, gcc: 200_000, wantEst: 200_000},
		}, 0},
		{"a probe without any feedback teaches nothing", []step{
			{at: 0, goal: 375_000, gcc: 300_000, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 500 * ms, gcc: 300_000, wantEst: 300_000, wantBusy: true},
			{at: 750 * ms, gcc: 300_000, wantEst: 300_000},
		}, 0},
		{"a goal at or below the estimate starts nothing", []step{
			{at: 0, goal: 300_000, gcc: 300_000, wantEst: 300_000},
		}, 0},
		{"heavy loss drops the floor whatever the estimate", []step{
			{at: 0, goal: 375_000, gcc: 300_000, haveLoss: true, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 500 * ms, gcc: 300_000, haveLoss: true, wantEst: 300_000, wantBusy: true},
			{at: 750 * ms, gcc: 300_000, haveLoss: true, wantEst: 375_000},
			{at: 1000 * ms, gcc: 400_000, loss: 0.1, haveLoss: true, wantEst: 400_000},
		}, 0},
		{"light loss drops a floor that holds the estimate above GCC", []step{
			{at: 0, goal: 375_000, gcc: 300_000, haveLoss: true, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 500 * ms, gcc: 300_000, haveLoss: true, wantEst: 300_000, wantBusy: true},
			{at: 750 * ms, gcc: 300_000, haveLoss: true, wantEst: 375_000},
			{at: 1000 * ms, gcc: 300_000, loss: 0.05, haveLoss: true, wantEst: 300_000},
		}, 0},
		{"light loss keeps a floor below GCC", []step{
			{at: 0, goal: 375_000, gcc: 300_000, haveLoss: true, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 500 * ms, gcc: 300_000, haveLoss: true, wantEst: 300_000, wantBusy: true},
			{at: 750 * ms, gcc: 300_000, haveLoss: true, wantEst: 375_000},
			{at: 1000 * ms, gcc: 340_000, haveLoss: true, wantEst: 375_000},
			{at: 1250 * ms, gcc: 400_000, loss: 0.05, haveLoss: true, wantEst: 400_000},
		}, 375_000},
		{"with a measured queuing delay, a falling estimate is no congestion", []step{
			{at: 0, goal: 375_000, gcc: 300_000, haveLoss: true, measured: true, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 250 * ms, gcc: 150_000, haveLoss: true, queuing: 5 * ms, measured: true, wantEst: 150_000, wantPad: true, wantBusy: true},
			{at: 500 * ms, gcc: 100_000, haveLoss: true, measured: true, wantEst: 100_000, wantBusy: true},
			{at: 750 * ms, gcc: 100_000, haveLoss: true, measured: true, wantEst: 375_000},
			{at: 1000 * ms, gcc: 60_000, haveLoss: true, queuing: 20 * ms, measured: true, wantEst: 375_000},
		}, 375_000},
		{"a standing queue stops a probe", []step{
			{at: 0, goal: 375_000, gcc: 300_000, haveLoss: true, measured: true, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 250 * ms, gcc: 300_000, haveLoss: true, queuing: 40 * ms, measured: true, wantEst: 300_000},
		}, 0},
		{"a standing queue drops the floor", []step{
			{at: 0, goal: 375_000, gcc: 300_000, haveLoss: true, measured: true, wantEst: 300_000, wantPad: true, wantBusy: true},
			{at: 500 * ms, gcc: 300_000, haveLoss: true, measured: true, wantEst: 300_000, wantBusy: true},
			{at: 750 * ms, gcc: 300_000, haveLoss: true, measured: true, wantEst: 375_000},
			{at: 1000 * ms, gcc: 300_000, haveLoss: true, queuing: 45 * ms, measured: true, wantEst: 300_000},
		}, 0},
		{"no estimate at all caps nothing", []step{
			{at: 0, gcc: 0, wantEst: 0},
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Prober
			for i, s := range tc.steps {
				if s.goal > 0 {
					p.Start(at(s.at), s.gcc, s.goal)
				}
				p.SetQueuing(s.queuing, s.measured)
				est := p.Update(at(s.at), s.gcc, s.loss, s.haveLoss)
				if est != s.wantEst || p.Padding() != s.wantPad || p.Busy() != s.wantBusy {
					t.Fatalf("step %d: est %d padding %v busy %v, want %d %v %v",
						i, est, p.Padding(), p.Busy(), s.wantEst, s.wantPad, s.wantBusy)
				}
			}
			if p.floor != tc.wantFloor {
				t.Fatalf("floor %d, want %d", p.floor, tc.wantFloor)
			}
		})
	}
}

func TestGoalGrowsWithSuccessesAndIsCappedByDemand(t *testing.T) {
	var p Prober
	if g := p.GoalFor(300_000, 10_000_000); g != 375_000 {
		t.Fatalf("first goal %d, want 5/4 of the estimate", g)
	}
	if g := p.GoalFor(300_000, 330_000); g != 366_667 {
		t.Fatalf("goal %d, want what the tracks need plus a tenth", g)
	}
	want := []int64{450_000, 525_000, 600_000, 600_000} // +50 %, +75 %, then +100 % at most
	now := t0
	for i, w := range want {
		p.Start(now, 300_000, p.GoalFor(300_000, 10_000_000))
		p.Update(now.Add(probeLength), 300_000, 0, true)
		p.Update(now.Add(probeLength+probeSettle), 300_000, 0, true)
		if g := p.GoalFor(300_000, 10_000_000); g != w {
			t.Fatalf("goal after %d successes: %d, want %d", i+1, g, w)
		}
		now = now.Add(time.Second)
	}
	p.Start(now, 300_000, 600_000)
	p.Update(now.Add(100*time.Millisecond), 300_000, 0.5, true)
	if g := p.GoalFor(300_000, 10_000_000); g != 375_000 {
		t.Fatalf("goal after a failure: %d, want the first step again", g)
	}
}

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	var p Prober
	now := t0
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, w := range want {
		if !p.Due(now) {
			t.Fatalf("probe %d not due at the end of its backoff", i)
		}
		p.Start(now, 100, 200)
		p.Update(now, 100, 0.5, true)
		if p.Due(now.Add(w-time.Millisecond)) || !p.Due(now.Add(w)) {
			t.Fatalf("failure %d: backoff is not %v", i+1, w)
		}
		now = now.Add(w)
	}
	// A success resets it.
	p.Start(now, 100, 200)
	p.Update(now.Add(probeLength), 100, 0, true)
	p.Update(now.Add(probeLength+probeSettle), 100, 0, true)
	if !p.Due(now.Add(probeLength + probeSettle)) {
		t.Fatal("not due right after a success")
	}
	p.Start(now, 100, 300)
	p.Update(now, 100, 0.5, true)
	if p.Due(now.Add(probeMinBackoff-time.Millisecond)) || !p.Due(now.Add(probeMinBackoff)) {
		t.Fatal("backoff after a success did not start over")
	}
}

func TestStartDoesNotInterruptAProbe(t *testing.T) {
	var p Prober
	p.Start(t0, 100, 200)
	p.Start(t0.Add(time.Millisecond), 100, 900)
	if p.Goal() != 200 {
		t.Fatalf("goal %d: a second Start replaced the running probe", p.Goal())
	}
}

func BenchmarkUpdate(b *testing.B) {
	var p Prober
	now := t0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now = now.Add(250 * time.Millisecond)
		if p.Due(now) {
			p.Start(now, 300_000, p.GoalFor(300_000, 2_000_000))
		}
		p.Update(now, 300_000, 0, true)
	}
}

// Congested reports the last update's trouble: a queue, loss, or (without
// a measured queue) a falling estimate.
func TestCongested(t *testing.T) {
	var p Prober
	for i, s := range []struct {
		gcc      int64
		loss     float64
		queuing  time.Duration
		measured bool
		want     bool
	}{
		{300_000, 0, 0, true, false},
		{100_000, 0, 5 * time.Millisecond, true, false}, // a falling estimate, no queue
		{100_000, 0, 40 * time.Millisecond, true, true},
		{100_000, 0.05, 0, true, true},
		{100_000, 0, 0, false, false},
		{50_000, 0, 0, false, true}, // falling, nothing measured
	} {
		p.SetQueuing(s.queuing, s.measured)
		p.Update(at(time.Duration(i)*250*time.Millisecond), s.gcc, s.loss, true)
		if p.Congested() != s.want {
			t.Fatalf("step %d: congested %v, want %v", i, p.Congested(), s.want)
		}
	}
}
