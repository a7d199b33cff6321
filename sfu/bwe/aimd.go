package bwe

import "math"

// Rate control settings.
const (
	decreaseFactor    = 0.85 // of the acknowledged rate, on overuse
	increasePerSec    = 1.08 // multiplicative growth far from the known capacity
	minIncrease       = 1000 // bit/s per step, so that low rates still grow
	headroomFactor    = 1.5  // the target never runs further ahead of what was acknowledged
	headroomConstant  = 10_000
	responseTime      = 200_000_000 // ns: a round trip plus the detector's delay
	minDecreaseGap    = 200_000_000 // ns between two decreases: the first must take effect
	capacitySmoothing = 0.05        // weight of a new capacity sample
	capacitySpread    = 3.0         // standard deviations that count as "near" the capacity
)

// aimd is the additive-increase, multiplicative-decrease controller the
// delay signal drives. Near the capacity it last found it creeps up by
// about a packet per response time; far from it (or before finding it) it
// grows 8 % a second; on overuse it falls to 85 % of what the path
// delivered.
type aimd struct {
	target       float64 // bit/s
	holding      bool    // after a decrease or on underuse: wait for the queue to clear
	lastChange   int64   // ns
	lastDecrease int64
	capacity     float64 // average acknowledged rate at overuse, bit/s; 0 unknown
	variance     float64 // of capacity, normalised by it
}

// update applies one verdict at now with the acknowledged rate acked
// (bit/s, 0 unknown) and the mean packet size seen (bytes).
func (a *aimd) update(u Usage, acked float64, packetBits float64, now int64) {
	if a.lastChange == 0 {
		a.lastChange = now
	}
	switch u {
	case Overuse:
		a.decrease(acked, now)
		return
	case Underuse:
		a.holding, a.lastChange = true, now
		return
	}
	if a.holding {
		a.holding, a.lastChange = false, now // the queue cleared: grow from here on
		return
	}
	if a.capacity > 0 && acked > a.capacity+capacitySpread*a.spread() {
		a.capacity, a.variance = 0, 0 // the path now carries more: search again
	}
	dt := float64(now-a.lastChange) / 1e9
	a.lastChange = now
	var grow float64
	if a.capacity > 0 && acked > 0 && acked > a.capacity-capacitySpread*a.spread() {
		grow = max(packetBits, 8*1200) * dt / (float64(responseTime) / 1e9)
	} else {
		grow = a.target * (math.Pow(increasePerSec, min(dt, 1)) - 1)
	}
	grow = max(grow, minIncrease*min(dt, 1))
	limit := headroomFactor*acked + headroomConstant
	if acked <= 0 {
		limit = a.target + grow
	}
	if a.target < limit {
		a.target = min(a.target+grow, limit)
	}
}

func (a *aimd) spread() float64 { return math.Sqrt(a.variance * a.capacity) }

// decrease cuts to 85 % of the acknowledged rate, at most once per
// minDecreaseGap, and learns the capacity from the rate at the overuse.
func (a *aimd) decrease(acked float64, now int64) {
	a.holding, a.lastChange = true, now
	if acked <= 0 || (a.lastDecrease != 0 && now-a.lastDecrease < minDecreaseGap) {
		return
	}
	a.lastDecrease = now
	if next := decreaseFactor * acked; next < a.target {
		a.target = next
	}
	if a.capacity > 0 && acked < a.capacity-capacitySpread*a.spread() {
		a.capacity, a.variance = 0, 0 // far below what was known: start over
	}
	if a.capacity == 0 {
		a.capacity, a.variance = acked, 0.4 // loose at first
		return
	}
	a.capacity = (1-capacitySmoothing)*a.capacity + capacitySmoothing*acked
	norm := max(a.capacity, 1)
	err := a.capacity - acked
	a.variance = min(max((1-capacitySmoothing)*a.variance+capacitySmoothing*err*err/norm, 0.4), 2.5)
}
