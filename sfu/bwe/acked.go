package bwe

// Acknowledged throughput is measured over bins of arrival time (the
// receiver's clock): what the path delivered, padding included. It can
// never exceed what the bottleneck carries, which makes it the measure a
// decrease starts from and, without congestion, a floor under the target.
const (
	ackBin     = 50_000_000 // ns
	ackBins    = 16         // ring size: room for reordered arrivals
	ackWindow  = 10         // complete bins the rate is taken over (500 ms)
	ackMinBins = 2          // a rate needs at least this much history
)

// ackedRate measures delivered bytes per arrival-time bin.
type ackedRate struct {
	bytes  [ackBins]int64
	index  [ackBins]int64 // which bin (arrival / ackBin) each slot holds, +1; 0 empty
	newest int64          // the newest bin seen, +1
	first  int64          // the first bin seen, +1
}

// add counts a received packet.
func (a *ackedRate) add(arrival int64, size int) {
	bin := floorDiv(arrival, ackBin) + 1
	if a.newest != 0 && bin <= a.newest-ackBins {
		return // too late to count
	}
	s := bin % ackBins
	if a.index[s] != bin {
		a.index[s], a.bytes[s] = bin, 0
	}
	a.bytes[s] += int64(size)
	if bin > a.newest {
		a.newest = bin
	}
	if a.first == 0 || bin < a.first {
		a.first = bin
	}
}

// rate returns bit/s over the last complete bins (the newest is still
// filling), or 0 before there is enough history.
func (a *ackedRate) rate() int64 {
	if a.newest == 0 {
		return 0
	}
	n := min(int64(ackWindow), a.newest-a.first)
	if n < ackMinBins {
		return 0
	}
	var sum int64
	for bin := a.newest - n; bin < a.newest; bin++ {
		if s := bin % ackBins; a.index[s] == bin {
			sum += a.bytes[s]
		}
	}
	return sum * 8 * 1_000_000_000 / (n * ackBin)
}

// floorDiv divides rounding toward minus infinity (arrival clocks may be
// negative).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
