package bwe

// Packets are grouped into bursts: those sent within burstSpan of the
// group's first make one group (a frame's packets leave together), and a
// packet that arrived within burstSpan of the previous one while gaining on
// it (it spent less time in transit) joins too: the network batched them.
// Comparing whole groups measures how the path's delay changes, not how a
// sender spaced one frame's packets.
const (
	burstSpan     = 5_000_000   // ns
	maxBurstSpan  = 100_000_000 // a batch never grows beyond this on arrival
	stalledArrive = 2_000_000_000
)

type group struct {
	firstSent, lastSent       int64
	firstArrival, lastArrival int64
	valid                     bool
}

// grouper turns received packets, in send order, into the delay variation
// between consecutive groups.
type grouper struct {
	cur, prev group
}

// sample is one inter-group measurement, all in ns.
type sample struct {
	variation int64 // arrival delta minus send delta: how much longer the later group took
	arrival   int64 // when the later group finished arriving
	sendDelta int64
}

// add folds in a packet and returns a sample when it completed a group.
// reset is true when the path was silent so long that the history no
// longer says anything about now.
func (g *grouper) add(p *Packet) (s sample, ok, reset bool) {
	c := &g.cur
	if !c.valid {
		*c = group{firstSent: p.Sent, lastSent: p.Sent, firstArrival: p.Arrival, lastArrival: p.Arrival, valid: true}
		return sample{}, false, false
	}
	if p.Sent < c.firstSent {
		return sample{}, false, false // sent before this group: reordered, no delay information
	}
	if g.belongs(p) {
		c.lastSent = max(c.lastSent, p.Sent)
		c.lastArrival = max(c.lastArrival, p.Arrival)
		return sample{}, false, false
	}
	// p starts a new group: the current one is complete.
	if g.prev.valid {
		arrivalDelta := c.lastArrival - g.prev.lastArrival
		sendDelta := c.lastSent - g.prev.lastSent
		switch {
		case arrivalDelta > stalledArrive || p.Arrival-c.lastArrival > stalledArrive:
			reset = true
		case arrivalDelta >= 0:
			s, ok = sample{variation: arrivalDelta - sendDelta, arrival: c.lastArrival, sendDelta: sendDelta}, true
		}
	}
	g.prev = *c
	*c = group{firstSent: p.Sent, lastSent: p.Sent, firstArrival: p.Arrival, lastArrival: p.Arrival, valid: true}
	return s, ok, reset
}

func (g *grouper) belongs(p *Packet) bool {
	c := &g.cur
	if p.Sent-c.firstSent <= burstSpan {
		return true
	}
	arrivalDelta := p.Arrival - c.lastArrival
	sendDelta := p.Sent - c.lastSent
	return arrivalDelta-sendDelta < 0 && arrivalDelta <= burstSpan && p.Arrival-c.firstArrival < maxBurstSpan
}
