package queuing

// Binning of arrivals: the delivered rate is taken over the last
// deliveryWindow of arrival times.
const (
	deliveryBin    = 100_000 // µs
	deliveryBins   = 10      // 1 s
	deliveryWindow = deliveryBin * deliveryBins
	// minDeliverySpan is the least stretch of arrivals a rate is given for:
	// over less, one feedback report's worth of packets weighs too much.
	minDeliverySpan = 200_000
)

// Delivery measures the rate at which a subscriber receives its packets:
// the bytes acknowledged over the span of their arrival times (the
// receiver's clock), the last second of it. Through a bottleneck this is
// the bottleneck's rate, whatever is sent. It is not safe for concurrent
// use.
type Delivery struct {
	bytes  [deliveryBins]int64
	index  [deliveryBins]int64 // which bin each slot holds (arrival / deliveryBin + 1), 0 empty
	first  int64               // the earliest arrival since the record (re)started, µs
	newest int64               // the latest arrival, µs
	have   bool
}

// Add records a packet of size bytes that arrived at arrival (µs, the
// receiver's clock).
func (d *Delivery) Add(arrival int64, size int) {
	if !d.have || arrival > d.newest+10*deliveryWindow || arrival < d.newest-10*deliveryWindow {
		// The first packet, or the receiver's clock jumped (its 24-bit
		// reference time wrapped): start again.
		*d = Delivery{first: arrival, newest: arrival, have: true}
	}
	d.newest = max(d.newest, arrival)
	d.first = min(d.first, arrival)
	i := arrival/deliveryBin + 1
	s := i % deliveryBins
	if d.index[s] != i {
		d.index[s], d.bytes[s] = i, 0
	}
	d.bytes[s] += int64(size)
}

// Rate returns the delivered rate, bit/s, over the last second of arrivals
// (less when the record is younger); ok is false before 200 ms of them.
func (d *Delivery) Rate() (bps int64, ok bool) {
	if !d.have {
		return 0, false
	}
	cur := d.newest/deliveryBin + 1
	var bytes int64
	for s, i := range d.index {
		if i != 0 && i <= cur && cur-i < deliveryBins {
			bytes += d.bytes[s]
		}
	}
	// The window's bins run from the start of the oldest to the newest
	// arrival, but not before the first one.
	start := max((cur-deliveryBins)*deliveryBin, d.first)
	span := d.newest - start
	if span < minDeliverySpan {
		return 0, false
	}
	return bytes * 8 * 1_000_000 / span, true
}
