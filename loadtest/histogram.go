package loadtest

import (
	"math/bits"
	"time"
)

// A latency histogram with log-linear buckets: values under 32 µs have a
// bucket of their own, and every power of two above is split into 32
// buckets, so a percentile read from it is within about 3 % of the true
// value. It covers up to 2^26 µs (67 s); longer values land in the last
// bucket. Fixed size: recording never allocates.
const (
	histSub     = 32 // buckets per power of two
	histSubBits = 5  // log2(histSub)
	histPowers  = 21 // powers of two above the exact range
	histBuckets = histSub + histPowers*histSub
)

type latencyHist struct {
	counts [histBuckets]uint32
	total  uint64
	max    time.Duration
}

// histIndex is the bucket of d.
func histIndex(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < histSub {
		return int(us)
	}
	shift := bits.Len64(us) - histSubBits - 1
	i := histSub + shift*histSub + int(us>>uint(shift)&(histSub-1))
	return min(i, histBuckets-1)
}

// histValue is the middle of bucket i.
func histValue(i int) time.Duration {
	if i < histSub {
		return time.Duration(i)*time.Microsecond + time.Microsecond/2
	}
	shift := (i - histSub) / histSub
	low := uint64(histSub+i%histSub) << uint(shift)
	width := uint64(1) << uint(shift)
	return time.Duration(low)*time.Microsecond + time.Duration(width)*time.Microsecond/2
}

func (h *latencyHist) add(d time.Duration) {
	h.counts[histIndex(d)]++
	h.total++
	h.max = max(h.max, d)
}

func (h *latencyHist) merge(o *latencyHist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile is the value below which a fraction q of the samples lie.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			return min(histValue(i), h.max)
		}
	}
	return h.max
}

// millis reads the latencyHist's percentiles in milliseconds.
func (h *latencyHist) millis() Percentiles {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Percentiles{P50: ms(h.quantile(0.5)), P95: ms(h.quantile(0.95)), P99: ms(h.quantile(0.99)), Max: ms(h.max)}
}
