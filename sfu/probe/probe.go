// Package probe runs a subscriber's bandwidth probes: padding the stream up
// to a goal rate above the estimate for a moment, and judging from the
// feedback whether the link carried it.
//
// A probe pads up to its goal for probeLength, then waits probeSettle for
// the feedback on the last of it. It fails at the first sign of trouble
// (loss or a queue: the caller judges the feedback), and the next one waits
// a backoff (2 s, doubling to 8 s); it succeeds when feedback arrived and
// none of it showed trouble, and its goal is then known to fit.
//
// Goals are in proportion to what is missing: a small gap is probed with
// little padding, and the step above the estimate doubles with each
// success in a row (25 %, 50 %, 100 %), so a link that became much better
// is found in a few probes while the first step after trouble stays small.
//
// A Prober is pure state driven by the clock it is given, so its decisions
// can be tested step by step.
package probe

import "time"

// Pace is how often padding is sent while a probe is active.
const Pace = 20 * time.Millisecond

const (
	probeLength     = 500 * time.Millisecond
	probeSettle     = 250 * time.Millisecond
	firstStep       = 25  // percent above the estimate a probe may ask for, first
	maxStep         = 100 // ... and after successes in a row
	probeMinBackoff = 2 * time.Second
	probeMaxBackoff = 8 * time.Second
)

// Outcome is what a period did to the probe (Observe).
type Outcome int

// Outcomes of Observe.
const (
	Idle      Outcome = iota // no probe was running
	Running                  // padding, or waiting for the feedback on it
	Succeeded                // the link carried the goal
	Failed                   // trouble, or no feedback at all: backing off
)

// Prober is the probing state of one subscriber. It is not safe for
// concurrent use: one allocation loop owns it.
type Prober struct {
	active   bool // padding is being sent
	settling bool // padding stopped; waiting for the feedback on it
	goal     int64
	until    time.Time // end of the padding, then of the settling
	next     time.Time // earliest start of the next probe
	backoff  time.Duration
	fed      bool // some feedback arrived during this probe
	streak   int  // successful probes in a row
}

// Padding reports whether padding should be sent now.
func (p *Prober) Padding() bool { return p.active }

// Goal is the rate, bit/s, the current (or last) probe pads up to.
func (p *Prober) Goal() int64 { return p.goal }

// Busy reports whether a probe is padding or waiting for its verdict.
func (p *Prober) Busy() bool { return p.active || p.settling }

// Due reports whether a new probe may start at now: none is running and
// the backoff after the last failure has passed.
func (p *Prober) Due(now time.Time) bool { return !p.Busy() && !now.Before(p.next) }

// GoalFor returns what the next probe from est should ask for, given what
// the subscriber's tracks would use if nothing were held back (desired,
// plus the allocator's tenth of headroom): what is missing, but at most a
// step above est.
func (p *Prober) GoalFor(est, desired int64) int64 {
	step := int64(min(firstStep<<min(p.streak, 8), maxStep))
	return min(desired*10/9+1, est*(100+step)/100)
}

// Start begins a probe toward goal at now, unless one is running or goal is
// no higher than the estimate.
func (p *Prober) Start(now time.Time, est, goal int64) {
	if goal <= est || p.Busy() {
		return
	}
	p.active, p.settling, p.goal, p.until, p.fed = true, false, goal, now.Add(probeLength), false
}

// Observe folds one period into the running probe: fed says feedback
// arrived in it, troubled that the feedback showed loss or a queue.
func (p *Prober) Observe(now time.Time, fed, troubled bool) Outcome {
	if !p.Busy() {
		return Idle
	}
	p.fed = p.fed || fed
	switch {
	case troubled:
		p.fail(now)
		return Failed
	case now.Before(p.until):
		return Running
	case p.active:
		p.active, p.settling, p.until = false, true, now.Add(probeSettle)
		return Running
	case !p.fed:
		p.fail(now) // no feedback at all: nothing was learnt
		return Failed
	}
	p.settling = false
	p.streak++
	p.backoff = 0
	p.next = now
	return Succeeded
}

// fail ends a probe at once and backs off.
func (p *Prober) fail(now time.Time) {
	p.active, p.settling, p.streak = false, false, 0
	if p.backoff < probeMinBackoff {
		p.backoff = probeMinBackoff
	} else {
		p.backoff = min(2*p.backoff, probeMaxBackoff)
	}
	p.next = now.Add(p.backoff)
}
