package rate

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	k  int64 = 1000
	M        = 1000 * k
	ms       = time.Millisecond
)

var t0 = time.Unix(1000, 0)

// period is one allocation period's signals and what the controller should
// make of them.
type period struct {
	s          Signals
	desired    int64
	want       int64 // the estimate
	congested  bool
	troubled   bool
	wantProbes bool // a probe runs after Probe
}

// run feeds periods 250 ms apart, probing after each as the allocator
// does, and checks every outcome.
func run(t *testing.T, c *Controller, start time.Time, ps []period) time.Time {
	t.Helper()
	now := start
	for i, p := range ps {
		est := c.Update(now, p.s, p.desired)
		c.Probe(now, est, p.desired)
		if est != p.want || c.Congested() != p.congested || c.Troubled() != p.troubled || c.Probing() != p.wantProbes {
			t.Fatalf("period %d: estimate %d congested %v troubled %v probing %v, want %d %v %v %v",
				i, est, c.Congested(), c.Troubled(), c.Probing(), p.want, p.congested, p.troubled, p.wantProbes)
		}
		now = now.Add(250 * ms)
	}
	return now
}

// fb is a calm period with feedback: no loss, no queue, delivered d.
func fb(est, delivered int64) Signals {
	return Signals{Feedback: true, Estimate: est, HaveLoss: true, HaveQueue: true, Delivered: delivered}
}

// A new subscriber on a path with feedback gets what it asked for up to
// startRate at once, then up to twice what the path delivers: seven
// 1.45 Mbit/s cameras are all granted within three periods, whatever GCC's
// slow start says.
func TestTrustGrantsWhatIsDesired(t *testing.T) {
	var c Controller
	const desired = 10_500 * k
	run(t, &c, t0, []period{
		{s: Signals{Feedback: true}, desired: desired, want: startRate},
		{s: fb(2500*k, 3800*k), desired: desired, want: 7600 * k},
		{s: fb(2600*k, 7500*k), desired: desired, want: desired*10/9 + 1},
		{s: fb(2700*k, 10_400*k), desired: desired, want: desired*10/9 + 1},
	})
	// Fewer wishes do not shrink the grant: nothing suggested congestion.
	if est := c.Update(t0.Add(time.Second), fb(2700*k, 3*M), 3*M); est != desired*10/9+1 {
		t.Fatalf("estimate %d after the wishes shrank", est)
	}
	// A small subscription is granted what it needs, not startRate.
	var small Controller
	run(t, &small, t0, []period{{s: Signals{Feedback: true}, desired: 500 * k, want: 500*k*10/9 + 1}})
}

// Without transport-wide feedback there is no trust: the estimate is the
// receiver's (REMB), or nothing (nothing capped).
func TestNoFeedbackNoTrust(t *testing.T) {
	var c Controller
	run(t, &c, t0, []period{
		{s: Signals{}, desired: 5 * M, want: 0},
		{s: Signals{Estimate: 700 * k}, desired: 5 * M, want: 700 * k},
		{s: Signals{Estimate: 700 * k}, desired: 5 * M, want: 700 * k, wantProbes: true},
	})
}

// A delay spike, and a standing queue that does not grow, are what a busy
// receiver shows: the estimate holds (no growth, no cut), and trust stays.
func TestBusyReceiverIsNoCongestion(t *testing.T) {
	var c Controller
	const desired = 10 * M
	q := func(d time.Duration, delivered int64) Signals {
		s := fb(2*M, delivered)
		s.Queue = d
		return s
	}
	g := int64(desired*10/9 + 1)
	now := run(t, &c, t0, []period{
		{s: Signals{Feedback: true}, desired: desired, want: startRate},
		{s: q(40*ms, 3*M), desired: desired, want: startRate, troubled: true}, // held: no growth
		{s: q(5*ms, 3500*k), desired: desired, want: 7 * M},
		{s: q(5*ms, 6*M), desired: desired, want: g},
	})
	// A constant backlog of 60 ms for two seconds: held, never cut.
	var ps []period
	for range 8 {
		ps = append(ps, period{s: q(60*ms, 10*M), desired: desired, want: g, troubled: true})
	}
	now = run(t, &c, now, ps)
	// Spikes up and down.
	ps = ps[:0]
	for i := range 8 {
		ps = append(ps, period{s: q(time.Duration(30+(i%2)*40)*ms, 10*M), desired: desired, want: g, troubled: true})
	}
	run(t, &c, now, ps)
	if !c.Trusting() {
		t.Fatal("a busy receiver ended the trust")
	}
}

// A queue that grows for a second is congestion: the estimate falls to
// 85 % of what the path delivered, and GCC's rate counts only up to there.
func TestGrowingQueueCuts(t *testing.T) {
	var c Controller
	q := func(d time.Duration) Signals {
		s := fb(5*M, 4*M)
		s.Queue = d
		return s
	}
	g := int64(10*M*10/9 + 1)
	now := run(t, &c, t0, []period{
		{s: fb(5*M, 6*M), desired: 10 * M, want: g},
		{s: q(30 * ms), desired: 10 * M, want: g, troubled: true},
		{s: q(35 * ms), desired: 10 * M, want: g, troubled: true},
		{s: q(38 * ms), desired: 10 * M, want: g, troubled: true},
		{s: q(42 * ms), desired: 10 * M, want: g, troubled: true},
		{s: q(45 * ms), desired: 10 * M, want: 3400 * k, troubled: true, congested: true},
	})
	if c.Trusting() {
		t.Fatal("still trusting after congestion")
	}
	// Calm again: what the path delivers is a floor, GCC counts up to the
	// cut, and once calm for probeCalm a probe looks for the rest.
	run(t, &c, now, []period{
		{s: fb(5*M, 3*M), desired: 10 * M, want: 3400 * k},
		{s: fb(5*M, 3*M), desired: 10 * M, want: 3400 * k},
		{s: fb(5*M, 3*M), desired: 10 * M, want: 3400 * k, wantProbes: true},
	})
}

// Heavy loss is congestion where the path queues, or for three periods in
// a row; bursts of it on a path without a queue (a receiver whose socket
// overflowed while busy), and light loss, hold the estimate.
func TestLoss(t *testing.T) {
	var c Controller
	lossy := func(l float64) Signals {
		s := fb(3*M, 2*M)
		s.Loss = l
		return s
	}
	g := int64(3*M*10/9 + 1)
	run(t, &c, t0, []period{
		{s: fb(3*M, 2*M), desired: 3 * M, want: g},
		{s: lossy(0.05), desired: 3 * M, want: g, troubled: true},
		{s: lossy(0.10), desired: 3 * M, want: g, troubled: true},
		{s: fb(3*M, 2*M), desired: 3 * M, want: g},
		{s: lossy(0.10), desired: 3 * M, want: g, troubled: true},
		{s: lossy(0.10), desired: 3 * M, want: g, troubled: true},
		{s: lossy(0.10), desired: 3 * M, want: 1700 * k, troubled: true, congested: true},
		{s: lossy(0.10), desired: 3 * M, want: 1700 * k, troubled: true, congested: true},
		{s: fb(3*M, 1600*k), desired: 3 * M, want: 1700 * k},
		{s: fb(3*M, 1600*k), desired: 3 * M, want: 1700 * k},
		{s: fb(3*M, 1600*k), desired: 3 * M, want: 1700 * k, wantProbes: true},
	})
	// With a standing queue, heavy loss is congestion at once.
	var q Controller
	queued := lossy(0.10)
	queued.Queue = maxQueue
	run(t, &q, t0, []period{
		{s: fb(3*M, 2*M), desired: 3 * M, want: g},
		{s: queued, desired: 3 * M, want: 1700 * k, troubled: true, congested: true},
	})
}

// After congestion the estimate climbs by probes: each success is a floor,
// and steps grow while they succeed.
func TestProbesClimbAfterCongestion(t *testing.T) {
	var c Controller
	lossy := fb(2*M, 1*M)
	lossy.Loss, lossy.Queue = 0.2, 40*ms
	now := run(t, &c, t0, []period{
		{s: fb(2*M, 1*M), desired: 3 * M, want: 3*M*10/9 + 1},
		{s: lossy, desired: 3 * M, want: 850 * k, troubled: true, congested: true},
	})
	// GCC is back at 2 Mbit/s, but counts only up to the cut.
	clean := fb(2*M, 800*k)
	var ps []period
	// Once calm for probeCalm (period 2), a probe pads for 500 ms and
	// waits 250 ms for its feedback: it succeeds at period 5, and the next
	// one starts there.
	ps = append(ps, period{s: clean, desired: 3 * M, want: 850 * k}, period{s: clean, desired: 3 * M, want: 850 * k})
	for _, want := range []int64{850 * k, 850 * k, 850 * k, 1_062_500, 1_062_500, 1_062_500, 1_593_750, 1_593_750} {
		ps = append(ps, period{s: clean, desired: 3 * M, want: want, wantProbes: true})
	}
	now = run(t, &c, now, ps)
	// A probe into trouble fails and backs off 2 s.
	troubled := clean
	troubled.Queue = 40 * ms
	ps = []period{{s: troubled, desired: 3 * M, want: 1_593_750, troubled: true}}
	for range 7 {
		ps = append(ps, period{s: clean, desired: 3 * M, want: 1_593_750})
	}
	ps = append(ps, period{s: clean, desired: 3 * M, want: 1_593_750, wantProbes: true})
	run(t, &c, now, ps)
}

// Nothing is probed for when nothing is missing.
func TestNoProbeWhenNothingIsMissing(t *testing.T) {
	var c Controller
	lossy := fb(2*M, 2*M)
	lossy.Loss, lossy.Queue = 0.2, 40*ms
	run(t, &c, t0, []period{
		{s: lossy, desired: 1 * M, want: 1700 * k, troubled: true, congested: true},
		{s: fb(2*M, 1*M), desired: 1 * M, want: 1700 * k},
		{s: fb(2*M, 1*M), desired: 1 * M, want: 1700 * k},
	})
}

// Without transport-wide feedback (REMB), an estimate falling by 15 % is
// congestion. With it, GCC falling is not, even while no queue is measured
// for a moment.
func TestFallingEstimateWithoutQueue(t *testing.T) {
	var c Controller
	run(t, &c, t0, []period{
		{s: Signals{Estimate: 1 * M}, desired: 500 * k, want: 1 * M},
		{s: Signals{Estimate: 800 * k}, desired: 500 * k, want: 800 * k, troubled: true, congested: true},
	})
	var twcc Controller
	g := int64(500*k*10/9 + 1)
	run(t, &twcc, t0, []period{
		{s: Signals{Feedback: true, Estimate: 1 * M, HaveLoss: true}, desired: 500 * k, want: 1 * M},
		{s: Signals{Feedback: true, Estimate: 300 * k, HaveLoss: true}, desired: 500 * k, want: g},
	})
	if !twcc.Trusting() {
		t.Fatal("GCC's fall ended the trust")
	}
}

// Peek grants a track added within a period what it needs while trusting.
func TestPeek(t *testing.T) {
	var c Controller
	c.Update(t0, fb(2*M, 3*M), 3*M)
	if est := c.Peek(5 * M); est != 5*M*10/9+1 {
		t.Fatalf("peek %d", est)
	}
	if est := c.Peek(20 * M); est != 6*M {
		t.Fatalf("peek %d, want twice the delivered rate", est)
	}
}

func BenchmarkUpdate(b *testing.B) {
	var c Controller
	now := t0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now = now.Add(250 * ms)
		est := c.Update(now, fb(2*M, 1*M), 3*M)
		c.Probe(now, est, 3*M)
	}
}
