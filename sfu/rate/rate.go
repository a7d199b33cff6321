// Package rate decides how much may be sent to one subscriber: the
// estimate its allocator shares among the tracks, from what the path shows
// each allocation period (Signals: an estimator's rate, loss, the standing
// queue, the rate delivered).
//
// While nothing suggests congestion, the estimate is what the subscriber
// asked for, up to startRate at first and then up to twice what the path
// delivers: GCC's climb of 8 % a second from a low start would starve a
// meeting for tens of seconds on a link that carries everything. The first
// congestion ends that trust. From then on the estimate is earned: the rate
// the path delivered without trouble, the goal of a probe whose feedback
// came back clean (package probe), or the estimator's rate up to the level
// congestion last cut the estimate to.
//
// Congestion is a standing queue of 30 ms or more that kept growing for a
// second (never falling back by 5 ms on the way), or loss above 8 % with a
// standing queue or for three periods in a row; it cuts the estimate to
// 85 % of the rate delivered. A burst of loss on a path that does not
// queue is a receiver whose socket overflowed while it was busy: it holds
// the estimate, no more. A queue that does not
// grow, or delay spikes without loss, are what a busy receiver (its CPU,
// not its link) shows: they hold the estimate (no growth, no probe, a
// probe running fails) but never cut it.
// Where no queue is measured (REMB), an estimate falling by 15 % within a
// period is congestion.
//
// A Controller is pure state driven by the clock it is given.
package rate

import (
	"time"

	"github.com/confab-sfu/confab/sfu/probe"
)

// Signals are what one allocation period shows of a subscriber's path:
// what an estimator hands the allocator.
type Signals struct {
	// Feedback is true when the subscriber sends transport-wide feedback
	// for what it receives, so loss, queue and delivery are measured.
	Feedback bool
	// Estimate is the estimator's rate, bit/s (0: none).
	Estimate int64
	// Loss is the share of packets lost since the previous period, valid
	// when HaveLoss (feedback arrived).
	Loss     float64
	HaveLoss bool
	// Queue is the standing queue (the recent least one-way delay above
	// the long-term least), valid when HaveQueue.
	Queue     time.Duration
	HaveQueue bool
	// Delivered is the rate the subscriber received lately, bit/s (0:
	// unknown).
	Delivered int64
}

const (
	// startRate is what a subscriber may be sent before the path has
	// delivered anything: two 720p cameras and audio.
	startRate = 4_000_000
	// cleanLoss is the most loss a period may show and be clean (grow the
	// estimate, let a probe succeed); congestionLoss is congestion.
	cleanLoss      = 0.03
	congestionLoss = 0.08
	// maxQueue is the standing queue that holds the estimate; one that
	// grows by queueGrowth over trendPeriods is congestion.
	maxQueue     = 30 * time.Millisecond
	queueGrowth  = 10 * time.Millisecond
	trendPeriods = 5 // the current period and the four before: a second at 250 ms
	// lossPeriods of heavy loss in a row are congestion even without a
	// queue.
	lossPeriods = 3
	// probeCalm is how long the path must have been calm before a probe.
	probeCalm = 500 * time.Millisecond
	// cutShare is what congestion leaves of the delivered rate (percent).
	cutShare = 85
	// estimateDrop: without a queue, an estimate falling below this share
	// (percent) of the previous one is congestion.
	estimateDrop = 85
)

// Controller is the rate decision state of one subscriber. It is not safe
// for concurrent use: one allocation loop owns it.
type Controller struct {
	probe    probe.Prober
	distrust bool  // congestion was seen: the estimate is earned
	trusting bool  // the last Update trusted the path
	grant    int64 // what trust granted so far, bit/s
	floor    int64 // what the path is known to carry, bit/s
	ceiling  int64 // the estimator's rate counts up to here (0: no cap)
	lastEst  int64 // the estimator's rate at the previous Update
	queues   [trendPeriods]time.Duration
	nQueues  int // how many of queues, the newest last, are measured
	// lossStreak counts the periods in a row with heavy loss.
	lossStreak int
	calmSince  time.Time // since when no period was troubled (zero: the last was)
	est        int64
	lastDel    int64 // the delivered rate at the previous Update

	congested, troubled bool
}

// Update folds one period's signals in and returns the estimate to
// allocate with, bit/s (0: nothing is known; nothing should be capped).
// desired is what the subscriber's tracks would use if nothing were held
// back.
func (c *Controller) Update(now time.Time, s Signals, desired int64) int64 {
	c.judge(s)
	switch {
	case c.congested:
		c.cut(s)
	case !c.troubled:
		c.floor = max(c.floor, s.Delivered)
	}
	if c.probe.Observe(now, s.HaveLoss, c.troubled) == probe.Succeeded {
		c.floor = max(c.floor, c.probe.Goal())
		if c.ceiling > 0 {
			c.ceiling = max(c.ceiling, c.probe.Goal())
		}
	}
	c.lastEst, c.lastDel = s.Estimate, s.Delivered
	c.trusting = s.Feedback && !c.distrust
	switch {
	case c.troubled:
		c.calmSince = time.Time{}
	case c.calmSince.IsZero():
		c.calmSince = now
	}
	return c.Peek(desired)
}

// Peek returns the estimate for desired without a new period: a track was
// added within one. While trusting, a calm path grants what desired needs,
// up to startRate and twice what was delivered.
func (c *Controller) Peek(desired int64) int64 {
	est := c.lastEst
	if c.ceiling > 0 {
		est = min(est, c.ceiling)
	}
	est = max(est, c.floor)
	if c.trusting {
		if !c.troubled {
			c.grant = max(c.grant, min(desired*10/9+1, max(startRate, 2*c.lastDel)))
		}
		est = max(est, c.grant)
	}
	c.est = est
	return est
}

// judge reads one period's signals: congestion, and trouble (congestion,
// light loss, or a queue that is not known to grow).
func (c *Controller) judge(s Signals) {
	var delayed, growing bool
	if s.HaveQueue {
		copy(c.queues[:], c.queues[1:])
		c.queues[trendPeriods-1] = s.Queue
		c.nQueues = min(c.nQueues+1, trendPeriods)
		delayed = s.Queue >= maxQueue
		growing = c.queueGrowing()
	} else {
		c.nQueues = 0
		// Without transport-wide feedback the estimate is the receiver's
		// own (REMB), and its fall is the delay signal. With it, GCC's
		// fall is not: GCC reads noisy arrival times as congestion, and a
		// queue not measured for a moment (no recent feedback) shows none.
		if !s.Feedback {
			delayed = c.lastEst > 0 && s.Estimate < c.lastEst*estimateDrop/100
			growing = delayed
		}
	}
	heavy := s.HaveLoss && s.Loss > congestionLoss
	if heavy {
		c.lossStreak++
	} else {
		c.lossStreak = 0
	}
	// Heavy loss is congestion where the path also queues, or goes on
	// for lossPeriods (a policer drops without queuing); a burst of it
	// on a path without a queue is a receiver that could not keep up
	// for a moment (its socket overflowed), not its link.
	lossy := heavy && ((s.HaveQueue && s.Queue >= maxQueue) || c.lossStreak >= lossPeriods)
	c.congested = lossy || growing
	c.troubled = c.congested || delayed || (s.HaveLoss && s.Loss > cleanLoss)
}

// queueGrowing reports a standing queue in every one of the last
// trendPeriods that grew by queueGrowth over them without falling back on
// the way: a link filling up, not a receiver that is busy for a moment,
// keeps a constant backlog, or shows delays that jump up and down.
func (c *Controller) queueGrowing() bool {
	if c.nQueues < trendPeriods {
		return false
	}
	for i, q := range c.queues {
		if q < maxQueue || (i > 0 && q < c.queues[i-1]-queueGrowth/2) {
			return false
		}
	}
	return c.queues[trendPeriods-1]-c.queues[0] >= queueGrowth
}

// cut lowers the estimate after congestion to a share of what the path
// delivered (of the estimate when that is unknown), and ends the trust.
func (c *Controller) cut(s Signals) {
	c.distrust, c.grant = true, 0
	base := s.Delivered
	if base <= 0 {
		base = c.est
	}
	if cut := base * cutShare / 100; cut > 0 {
		c.floor = min(c.floor, cut)
		c.ceiling = cut
	}
}

// Congested reports whether the last Update saw congestion: a growing
// queue, or heavy loss with a queue or for lossPeriods (where no queue is
// measured: heavy loss, or a falling estimate).
func (c *Controller) Congested() bool { return c.congested }

// Troubled reports whether the last Update saw any trouble: congestion,
// loss above 3 %, or a standing queue.
func (c *Controller) Troubled() bool { return c.troubled }

// Trusting reports whether the last Update trusted the path: nothing has
// suggested congestion yet.
func (c *Controller) Trusting() bool { return c.trusting }

// Probe starts a probe at now when something is held back (the estimate
// est is below what desired needs with a tenth of headroom), the path has
// been calm for probeCalm and the backoff has passed. While trusting there
// is nothing to probe for: the estimate follows what is desired. Padding
// a path that was troubled a moment ago would mostly measure that trouble
// again, at the cost of the padding.
func (c *Controller) Probe(now time.Time, est, desired int64) {
	calm := !c.calmSince.IsZero() && now.Sub(c.calmSince) >= probeCalm
	if c.trusting || !calm || est <= 0 || desired*10/9 <= est || !c.probe.Due(now) {
		return
	}
	c.probe.Start(now, est, c.probe.GoalFor(est, desired))
}

// Padding reports whether a probe pads the stream now, and up to which
// rate, bit/s.
func (c *Controller) Padding() (bool, int64) { return c.probe.Padding(), c.probe.Goal() }

// Probing reports whether a probe is padding or waiting for its verdict.
func (c *Controller) Probing() bool { return c.probe.Busy() }
