// Package probe decides when a subscriber's link may carry more than its
// bandwidth estimate says, by probing: padding the stream up to a goal rate
// and watching the feedback.
//
// GCC raises its estimate only a few percent a second, and only while
// traffic flows, so a subscriber held on a low layer would take minutes to
// climb back after its link improved. A probe pads the stream up to a goal
// for probeLength, waits probeSettle for the feedback on the last of it, and
// if that feedback showed neither loss nor a falling estimate, the goal
// becomes a floor under the estimate. A probe stops at the first congestion
// signal, and any loss while the floor holds the estimate above GCC drops the
// floor: a wrong floor would otherwise keep the link overfull.
//
// Congestion is loss, or a delay signal: the queuing delay measured from
// one-way delays when the caller has it (SetQueuing), else the estimate
// itself falling. The estimate is a poor delay signal where arrival times
// are noisy: GCC reads the scatter as congestion and halves itself
// without any queue on the path.
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
	probeStep       = 25  // percent above the estimate a first probe asks for
	probeMaxStep    = 100 // ... and after successes in a row
	probeMinBackoff = 2 * time.Second
	probeMaxBackoff = 8 * time.Second
	probeMaxLoss    = 0.03 // more loss than this fails a probe or drops the floor
	congestionLoss  = 0.08 // loss that drops the floor at any time
	// congestionDrop: without a queuing delay, an estimate falling below
	// this share (percent) of the previous one is taken as congestion.
	congestionDrop = 85
	// maxQueuing is the queuing delay taken as congestion. A probe 25 %
	// above a path's capacity builds it within about 150 ms.
	maxQueuing = 30 * time.Millisecond
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
	floor    int64
	streak   int   // successful probes in a row
	lastGCC  int64 // the estimate at the previous Update
	queuing  time.Duration
	measured bool // queuing is known: it is the delay signal
	troubled bool // the last Update saw congestion or loss
}

// Padding reports whether padding should be sent now.
func (p *Prober) Padding() bool { return p.active }

// Goal is the rate, bit/s, the current probe pads up to.
func (p *Prober) Goal() int64 { return p.goal }

// Busy reports whether a probe is padding or waiting for its verdict.
func (p *Prober) Busy() bool { return p.active || p.settling }

// Due reports whether a new probe may start at now: none is running and
// the backoff after the last failure has passed.
func (p *Prober) Due(now time.Time) bool { return !p.Busy() && !now.Before(p.next) }

// GoalFor returns what the next probe from est should ask for, given what
// the subscriber's tracks would use if nothing were held back (desired,
// plus a tenth of headroom). Each success in a row makes the step bigger (as
// TCP's slow start does), so a link that became much better is found in a
// few seconds; any failure starts over.
func (p *Prober) GoalFor(est, desired int64) int64 {
	step := min(int64(probeStep*(1+p.streak)), probeMaxStep)
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

// SetQueuing gives the path's queuing delay for the next Update; known is
// false when it is not measured (then a falling estimate is the delay
// signal).
func (p *Prober) SetQueuing(d time.Duration, known bool) { p.queuing, p.measured = d, known }

// Congested reports whether the last Update saw congestion (a queue, or a
// falling estimate where none is measured) or loss.
func (p *Prober) Congested() bool { return p.troubled }

// Update folds one period's signals in: gcc is the estimator's rate (0 when
// unknown), loss the share of packets lost since the previous call (valid
// when haveLoss). It returns the estimate to allocate with: gcc, raised to
// the floor a successful probe left.
func (p *Prober) Update(now time.Time, gcc int64, loss float64, haveLoss bool) int64 {
	delayed := p.lastGCC > 0 && gcc < p.lastGCC*congestionDrop/100
	if p.measured {
		delayed = p.queuing > maxQueuing
	}
	congested := (haveLoss && loss > congestionLoss) || delayed
	lossy := haveLoss && loss > probeMaxLoss
	p.lastGCC = gcc
	p.troubled = congested || lossy
	if congested || (lossy && p.floor > gcc) {
		p.floor = 0
	}
	if p.Busy() {
		p.fed = p.fed || haveLoss
		switch {
		case congested || lossy:
			p.fail(now)
		case now.Before(p.until):
		case p.active:
			p.active, p.settling, p.until = false, true, now.Add(probeSettle)
		case !p.fed:
			p.fail(now) // no feedback at all: nothing was learnt
		default:
			p.settling = false
			p.floor = max(p.floor, p.goal)
			p.streak++
			p.backoff = 0
			p.next = now
		}
	}
	if gcc <= 0 {
		return gcc // no feedback at all: nothing is capped
	}
	return max(gcc, p.floor)
}
