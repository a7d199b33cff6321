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
// Departures are recorded on the packet path (lock-free, no allocation);
// Monitor and Delivery are fed from feedback and read by the allocation
// loop.
package queuing

import (
	"sync/atomic"
	"time"
)

// departureSlots is how many recent departures are kept: feedback comes
// every ~100 ms, so this covers a second even at 1000 packets a second.
const departureSlots = 1024

// Departures remembers when each recent transport-wide sequence number was
// sent, and its size. It is safe for concurrent use.
type Departures struct {
	slots [departureSlots]atomic.Uint64 // departure µs << 16 | sequence number
	sizes [departureSlots]atomic.Uint32 // sequence number << 16 | bytes
	// streams: bound streams with (1) and without (2) transport-wide numbers
	streams atomic.Uint32
}

// StreamBound notes that a stream was bound to the connection, numbered
// (twcc) or not.
func (d *Departures) StreamBound(twcc bool) {
	if twcc {
		d.streams.Or(1)
	} else {
		d.streams.Or(2)
	}
}

// Expected reports whether departures are, or will be, recorded: some
// stream carries transport-wide numbers, or none was bound yet (Confab
// always offers them, and a subscriber normally takes them).
func (d *Departures) Expected() bool {
	s := d.streams.Load()
	return s == 0 || s&1 != 0
}

// Record notes that seq, of size bytes, was sent at now (Unix nanoseconds).
func (d *Departures) Record(seq uint16, now int64, size int) {
	i := int(seq) % departureSlots
	// µs modulo 2^48 (8.9 years): one-way delays only need a constant offset.
	d.slots[i].Store(uint64(now/1000)&(1<<48-1)<<16 | uint64(seq))
	d.sizes[i].Store(uint32(seq)<<16 | uint32(min(size, 0xffff)))
}

// Lookup returns when seq was sent (Unix microseconds) and its size, if it
// still is among the recent ones.
func (d *Departures) Lookup(seq uint16) (at int64, size int, ok bool) {
	i := int(seq) % departureSlots
	v := d.slots[i].Load()
	if v == 0 || uint16(v) != seq {
		return 0, 0, false
	}
	// Recorded just after the time: a slot being rewritten shows another
	// number in one of the two, and the packet counts without a size.
	if s := d.sizes[i].Load(); uint16(s>>16) == seq {
		size = int(uint16(s))
	}
	return int64(v >> 16), size, true
}

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
