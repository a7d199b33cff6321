package probe

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Unix(1000, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

// step is one allocation period: optionally start a probe toward goal from
// an estimate of 300k, then observe the period's feedback.
type step struct {
	at       time.Duration
	goal     int64 // > 0: Start first
	fed      bool
	troubled bool
	want     Outcome
	wantPad  bool // Padding() after the period
}

func TestProber(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name  string
		steps []step
	}{
		{"a clean probe succeeds once its feedback is in", []step{
			{at: 0, goal: 375_000, fed: true, want: Running, wantPad: true},
			{at: 250 * ms, fed: true, want: Running, wantPad: true},
			{at: 500 * ms, fed: true, want: Running}, // settling
			{at: 750 * ms, fed: true, want: Succeeded},
			{at: 1000 * ms, fed: true, want: Idle},
		}},
		{"trouble during a probe stops it at once", []step{
			{at: 0, goal: 375_000, want: Running, wantPad: true},
			{at: 250 * ms, fed: true, troubled: true, want: Failed},
		}},
		{"trouble while settling fails it", []step{
			{at: 0, goal: 375_000, fed: true, want: Running, wantPad: true},
			{at: 500 * ms, fed: true, want: Running},
			{at: 750 * ms, fed: true, troubled: true, want: Failed},
		}},
		{"a probe without any feedback teaches nothing", []step{
			{at: 0, goal: 375_000, want: Running, wantPad: true},
			{at: 500 * ms, want: Running},
			{at: 750 * ms, want: Failed},
		}},
		{"a goal at or below the estimate starts nothing", []step{
			{at: 0, goal: 300_000, fed: true, want: Idle},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Prober
			for i, s := range tc.steps {
				if s.goal > 0 {
					p.Start(at(s.at), 300_000, s.goal)
				}
				got := p.Observe(at(s.at), s.fed, s.troubled)
				if got != s.want || p.Padding() != s.wantPad {
					t.Fatalf("step %d: outcome %d padding %v, want %d %v", i, got, p.Padding(), s.want, s.wantPad)
				}
			}
		})
	}
}

// succeed runs one probe from est to its goal with clean feedback.
func succeed(p *Prober, now time.Time, est, desired int64) {
	p.Start(now, est, p.GoalFor(est, desired))
	p.Observe(now.Add(probeLength), true, false)
	p.Observe(now.Add(probeLength+probeSettle), true, false)
}

// Goals follow what is missing: a small gap is probed with a small goal, a
// large one in steps of 25 %, 50 %, then 100 % while probes succeed.
func TestGoalIsWhatIsMissingInGrowingSteps(t *testing.T) {
	var p Prober
	if g := p.GoalFor(300_000, 10_000_000); g != 375_000 {
		t.Fatalf("first goal %d, want 5/4 of the estimate", g)
	}
	if g := p.GoalFor(300_000, 288_000); g != 320_001 {
		t.Fatalf("goal %d for a small gap, want what the tracks need plus a tenth", g)
	}
	want := []int64{450_000, 600_000, 600_000} // +50 %, then +100 % at most
	now := t0
	for i, w := range want {
		succeed(&p, now, 300_000, 10_000_000)
		if g := p.GoalFor(300_000, 10_000_000); g != w {
			t.Fatalf("goal after %d successes: %d, want %d", i+1, g, w)
		}
		now = now.Add(time.Second)
	}
	p.Start(now, 300_000, 600_000)
	p.Observe(now.Add(100*time.Millisecond), true, true)
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
		p.Observe(now, true, true)
		if p.Due(now.Add(w-time.Millisecond)) || !p.Due(now.Add(w)) {
			t.Fatalf("failure %d: backoff is not %v", i+1, w)
		}
		now = now.Add(w)
	}
	// A success resets it.
	succeed(&p, now, 100, 1000)
	if !p.Due(now.Add(probeLength + probeSettle)) {
		t.Fatal("not due right after a success")
	}
	p.Start(now, 100, 300)
	p.Observe(now, true, true)
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

func BenchmarkObserve(b *testing.B) {
	var p Prober
	now := t0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now = now.Add(250 * time.Millisecond)
		if p.Due(now) {
			p.Start(now, 300_000, p.GoalFor(300_000, 2_000_000))
		}
		p.Observe(now, true, false)
	}
}
