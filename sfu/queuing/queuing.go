// Package queuing measures a subscriber's path from the packets its
// transport-wide feedback (TWCC) acknowledges: how much it is queuing, from
// their one-way delays (arrival time on the receiver's clock minus
// departure time on ours), and the rate it delivers, from their sizes and
// arrival times.
//
// Queuing delay is the recent minimum one-way delay above the long-term
// minimum. Minima make it robust to receivers whose arrival times are
// noisy: Firefox stamps arrival times after its network thread hands the
// packets on, so they scatter by 0-20 ms above the truth, while a standing
// queue delays every packet. A delay-gradient estimator (GCC) reads that
// scatter as congestion; the minima do not move.
//
// Departures are recorded by the send path's transport-wide history
// (package sfu/twcc); Monitor and Delivery are fed from its feedback
// results and read by the allocation loop.
package queuing

import "time"

// Binning of the minima: the recent minimum is taken over the last
// recentBins bins, the base over all of them.
const (
	binWidth   = 250 * time.Millisecond
	bins       = 240 // 60 s: long enough that a standing queue does not become the base
	recentBins = 2   // 500 ms
)

// Monitor turns one-way delays into a queuing delay. It is not safe for
// concurrent use.
type Monitor struct {
	min   [bins]int64 // the least one-way delay (µs, arbitrary offset) per bin
	index [bins]int64 // which bin each slot holds (time / binWidth), 0 empty
}

// Add records a one-way delay (µs, any constant offset) measured at now.
func (m *Monitor) Add(owd int64, now time.Time) {
	i := now.UnixNano()/int64(binWidth) + 1
	s := i % bins
	if m.index[s] != i {
		m.index[s], m.min[s] = i, owd
		return
	}
	m.min[s] = min(m.min[s], owd)
}

// Queuing returns the queuing delay at now: the least one-way delay of the
// last 500 ms above the least of the last 60 s. ok is false without recent
// samples.
func (m *Monitor) Queuing(now time.Time) (d time.Duration, ok bool) {
	cur := now.UnixNano()/int64(binWidth) + 1
	var base, recent int64
	haveBase := false
	for s := range m.min {
		i := m.index[s]
		if i == 0 || i > cur || cur-i >= bins {
			continue
		}
		if !haveBase || m.min[s] < base {
			base, haveBase = m.min[s], true
		}
		if cur-i < recentBins && (!ok || m.min[s] < recent) {
			recent, ok = m.min[s], true
		}
	}
	if !ok {
		return 0, false
	}
	return time.Duration(recent-base) * time.Microsecond, true
}
