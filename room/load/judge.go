// Package load measures what a node spends (its process's CPU over a short
// window, the streams it forwards, packets and bits per second out) and
// judges it against the operator's limits: the pressure levels at which
// the server sheds (lower layers, background video paused), the level at
// which it is over its limits (new work refused, not ready), and whether
// one more join, publish or viewer would push it past them. The judgement
// (Judge, Admits) is pure, clock given; Monitor samples and keeps it.
package load

import (
	"math"
	"time"
)

// Limits are what a node may spend. A zero field is no limit.
type Limits struct {
	// CPU is the process's share of the machine's CPUs, 0..1.
	CPU float64
	// Streams forwarded: one per subscriber and track (relayed layers
	// included).
	Streams int
	// Bitrate out, bit/s.
	Bitrate float64
}

// Defaults for a machine with cores CPUs: 85 % of the machine, 400
// forwarded streams per core (a core forwards about 60,000 packets a
// second: 400 video and audio streams at their average rate with room to
// spare), and no bitrate limit (the network is not the machine's to know).
func Defaults(cores int) Limits {
	return Limits{CPU: 0.85, Streams: 400 * max(cores, 1)}
}

// Reading is one measurement of the node.
type Reading struct {
	CPU        float64 // share of the machine's CPUs, 0..1
	Streams    int
	PacketsOut float64 // per second
	BitrateOut float64 // bit/s
}

// Ratio is the reading's highest share of a limit: 1 is at a limit.
func (l Limits) Ratio(r Reading) float64 {
	ratio := 0.0
	if l.CPU > 0 {
		ratio = math.Max(ratio, r.CPU/l.CPU)
	}
	if l.Streams > 0 {
		ratio = math.Max(ratio, float64(r.Streams)/float64(l.Streams))
	}
	if l.Bitrate > 0 {
		ratio = math.Max(ratio, r.BitrateOut/l.Bitrate)
	}
	return ratio
}

// Level is how loaded a node is, from its ratio to its limits.
type Level int

// The levels, each entered at a share of the limits and left a tenth
// below it, so that a reading near a threshold does not flap.
const (
	Normal   Level = iota
	Pressure       // >= 75 %: video capped at the medium layer, background video paused
	High           // >= 90 %: video capped at the low layer
	Over           // >= 100 %: new joins, publications and viewers refused; not ready
)

var (
	enterAt = [...]float64{Normal: 0, Pressure: 0.75, High: 0.9, Over: 1}
	// leaveBelow is where a level is left, back to the one below.
	leaveBelow = [...]float64{Normal: 0, Pressure: 0.65, High: 0.8, Over: 0.9}
	levelNames = [...]string{Normal: "normal", Pressure: "pressure", High: "high", Over: "over"}
)

func (l Level) String() string {
	if l < Normal || l > Over {
		return "unknown"
	}
	return levelNames[l]
}

// Judge keeps a node's level: it rises as soon as a reading crosses a
// threshold, and falls only once the reading is below the level's exit
// and the level has held for Hold (shedding lowers the load it answers:
// falling at once would undo it at once).
type Judge struct {
	Hold  time.Duration
	level Level
	since time.Time
}

// Level is the current level.
func (j *Judge) Level() Level { return j.level }

// Update judges a new ratio at now and reports the level and whether it
// changed.
func (j *Judge) Update(ratio float64, now time.Time) (Level, bool) {
	next := Normal
	for l := Over; l > Normal; l-- {
		if ratio >= enterAt[l] {
			next = l
			break
		}
	}
	if next < j.level {
		if now.Sub(j.since) < j.Hold {
			return j.level, false
		}
		// Down a level at a time while the reading is below its exit:
		// between a level's exit and its entry the level holds.
		next = j.level
		for next > Normal && ratio < leaveBelow[next] {
			next--
		}
	}
	if next == j.level {
		return j.level, false
	}
	j.level, j.since = next, now
	return next, true
}

// estimateFrom is the least number of streams from which the CPU a stream
// costs is judged (fewer: the process's other work dominates).
const estimateFrom = 20

// Admits reports whether a node at reading and level can take on extra
// forwarded streams (a join's subscriptions, a publication's subscribers,
// a viewer's tracks) without passing a limit: never while Over, and not
// when the streams, or the CPU and bitrate they would add at today's cost
// per stream, would pass one. Nothing added (extra 0) is refused only
// while Over.
func (l Limits) Admits(r Reading, level Level, extra int) bool {
	if level >= Over {
		return false
	}
	if extra <= 0 {
		return true
	}
	streams := r.Streams + extra
	if l.Streams > 0 && streams > l.Streams {
		return false
	}
	if r.Streams < estimateFrom {
		return true
	}
	grow := float64(streams) / float64(r.Streams)
	if l.CPU > 0 && r.CPU*grow > l.CPU {
		return false
	}
	return l.Bitrate <= 0 || r.BitrateOut*grow <= l.Bitrate
}
