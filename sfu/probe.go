package sfu

import "time"

// Probing: GCC only raises its estimate a few percent per second, and only
// while traffic flows, so a subscriber held on a low layer would take
// minutes to climb back after its link improved. The allocator therefore
// probes: it pads the stream up to a goal rate for probeLength, waits
// probeSettle for the feedback on the last of it, and if that feedback
// showed neither loss nor a falling estimate, the goal becomes a floor
// under the estimate. A probe stops at the first congestion signal, and
// any loss while the floor holds the estimate above GCC drops the floor:
// a wrong floor would otherwise keep the link overfull.
const (
	probeLength     = 500 * time.Millisecond
	probeSettle     = 250 * time.Millisecond
	probePace       = 20 * time.Millisecond
	probeStep       = 25  // percent above the estimate a first probe asks for
	probeMaxStep    = 100 // ... and after successes in a row
	probeMinBackoff = 2 * time.Second
	probeMaxBackoff = 8 * time.Second
	probeMaxLoss    = 0.03 // more loss than this fails a probe or drops the floor
	congestionLoss  = 0.08 // loss that drops the floor at any time
)

// prober is the probing state machine of one subscriber (owned by its
// allocator goroutine; pure apart from the clock it is given).
type prober struct {
	active   bool // padding is being sent
	settling bool // padding stopped; waiting for the feedback on it
	goal     int64
	until    time.Time // end of the padding, then of the settling
	next     time.Time // earliest start of the next probe
	backoff  time.Duration
	fed      bool // some feedback arrived during this probe
	floor    int64
	probes   int
	successN int
	streak   int // successful probes in a row
}

// goalFor returns what the next probe from est should ask for, given what
// the subscriber's tracks would use if nothing were held back. Each success
// in a row makes the step bigger (as TCP's slow start does), so a link that
// became much better is found in a few seconds; any failure starts over.
func (p *prober) goalFor(est, desired int64) int64 {
	step := min(int64(probeStep*(1+p.streak)), probeMaxStep)
	return min(desired*10/9+1, est*(100+step)/100)
}

func (p *prober) start(now time.Time, est, goal int64) {
	if goal <= est || p.active || p.settling {
		return
	}
	p.active, p.settling, p.goal, p.until, p.fed = true, false, goal, now.Add(probeLength), false
	p.probes++
}

// busy reports whether a probe is padding or waiting for its verdict.
func (p *prober) busy() bool { return p.active || p.settling }

// fail ends a probe at once and backs off.
func (p *prober) fail(now time.Time) {
	p.active, p.settling, p.streak = false, false, 0
	if p.backoff < probeMinBackoff {
		p.backoff = probeMinBackoff
	} else {
		p.backoff = min(2*p.backoff, probeMaxBackoff)
	}
	p.next = now.Add(p.backoff)
}

// update folds one allocation period's signals in and returns the
// estimate to allocate with.
func (p *prober) update(now time.Time, gcc, lastGCC int64, loss float64, haveLoss bool) int64 {
	congested := (haveLoss && loss > congestionLoss) || (lastGCC > 0 && gcc < lastGCC*85/100)
	lossy := haveLoss && loss > probeMaxLoss
	if congested || (lossy && p.floor > gcc) {
		p.floor = 0
	}
	if p.busy() {
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
			p.successN++
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
