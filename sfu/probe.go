package sfu

import "time"

// Probing: GCC only raises its estimate a few percent per second, and only
// while traffic flows, so a subscriber held on a low layer would take
// minutes to climb back after its link improved. The allocator therefore
// probes: it pads the stream up to a goal rate for probeLength, and if the
// subscriber's feedback shows neither loss nor a falling estimate, the goal
// becomes a floor under the estimate. Any congestion signal drops the floor.
const (
	probeLength     = 500 * time.Millisecond
	probePace       = 20 * time.Millisecond
	probeMinBackoff = 2 * time.Second
	probeMaxBackoff = 8 * time.Second
	probeMaxLoss    = 0.03 // more loss than this during a probe fails it
	congestionLoss  = 0.08 // loss that drops the floor at any time
)

// prober is the probing state machine of one subscriber (owned by its
// allocator goroutine; pure apart from the clock it is given).
type prober struct {
	active   bool
	goal     int64 // bit/s the probe pads up to
	until    time.Time
	next     time.Time // earliest start of the next probe
	backoff  time.Duration
	failed   bool // a congestion signal arrived during the probe
	floor    int64
	probes   int
	successN int
}

func (p *prober) start(now time.Time, est, goal int64) {
	if goal <= est {
		return
	}
	p.active, p.goal, p.until, p.failed = true, goal, now.Add(probeLength), false
	p.probes++
}

// update folds one allocation period's signals in and returns the
// estimate to allocate with.
func (p *prober) update(now time.Time, gcc, lastGCC int64, loss float64, haveLoss bool) int64 {
	congested := (haveLoss && loss > congestionLoss) || (lastGCC > 0 && gcc < lastGCC*85/100)
	if congested {
		p.floor = 0
	}
	if p.active {
		if congested || (haveLoss && loss > probeMaxLoss) {
			p.failed = true
		}
		if !now.Before(p.until) {
			p.active = false
			if p.failed {
				if p.backoff < probeMinBackoff {
					p.backoff = probeMinBackoff
				} else {
					p.backoff = min(2*p.backoff, probeMaxBackoff)
				}
				p.next = now.Add(p.backoff)
			} else {
				p.floor = max(p.floor, p.goal)
				p.successN++
				p.backoff = 0
				p.next = now
			}
		}
	}
	if gcc <= 0 {
		return gcc // no feedback at all: nothing is capped
	}
	return max(gcc, p.floor)
}
