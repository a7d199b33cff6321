package bwe

// Loss-based bound: judged over a second of feedback (a fifth of one when
// more than a quarter is lost: a full queue must be left at once), above
// 10 % loss the target falls by half the loss share; between 2 % and 10 % it may not grow (some loss is the radio's,
// not congestion's, and must not cut the rate); below 2 % the bound lifts
// and the delay-based controller alone decides.
const (
	lossHigh     = 0.10
	lossLow      = 0.02
	lossMinCount = 20            // packets a loss share is judged on
	lossPeriod   = 1_000_000_000 // ns of feedback a loss share is judged on ...
	lossQuick    = 200_000_000   // ... or this, when the loss is severe
	lossSevere   = 0.25
	// lossCutGap is the least time between two cuts: the loss reported
	// right after a cut is of packets sent before it (a round trip plus a
	// full queue ago).
	lossCutGap = 500_000_000
)

// lossBound accumulates reported packets and bounds the target by loss.
type lossBound struct {
	bound          float64 // bit/s; 0 is no bound
	lost, received int
	since          int64   // ns, start of the accumulation
	share          float64 // the last judged loss share
	judged         bool
	lastCut        int64 // ns
}

// count folds in one result.
func (l *lossBound) count(p *Packet) {
	switch {
	case p.Lost:
		l.lost++
	case p.Late:
		// Counted lost before, arrived after all: undo if still in the tally.
		if l.lost > 0 {
			l.lost--
		}
		l.received++
	default:
		l.received++
	}
}

// judge updates the bound at now when enough has been counted, given the
// current target and the acknowledged rate (bit/s, 0 unknown).
func (l *lossBound) judge(current, acked float64, now int64) {
	if l.since == 0 {
		l.since = now
	}
	total := l.lost + l.received
	severe := float64(l.lost) > lossSevere*float64(total)
	if total < lossMinCount || now-l.since < lossQuick || (!severe && now-l.since < lossPeriod) {
		return
	}
	l.share, l.judged = float64(l.lost)/float64(total), true
	l.lost, l.received, l.since = 0, 0, now
	switch {
	case l.share > lossHigh:
		if l.lastCut != 0 && now-l.lastCut < lossCutGap {
			return
		}
		l.lastCut = now
		base := current
		if acked > 0 {
			base = min(base, acked)
		}
		l.bound = base * (1 - l.share/2)
	case l.share >= lossLow:
		if l.bound == 0 {
			l.bound = current // hold where it is
		}
	default:
		l.bound = 0
	}
}
