package sfu

import "time"

// Hysteresis of bandwidth pauses: a resumed video costs the publisher a
// keyframe and its viewer a frozen tile, so the allocator pauses only on
// lasting evidence and never toggles a track faster than a viewer can
// follow.
const (
	// pauseAfter: a forwarded video is paused once its lowest layer has
	// not fitted, on a troubled path that was congested at some point,
	// for this long without a break.
	pauseAfter = time.Second
	// resumeAfter: a paused video resumes once it has fitted, on a calm
	// path, for this long without a break.
	resumeAfter = 2 * time.Second
	// minDwell is the least time between two switches of one track.
	minDwell = 5 * time.Second
	// A video paused again within settleAfter of its resume waits twice as
	// long for its next resume, up to maxResumeAfter: a link that cannot
	// carry it does not get a keyframe request and a frozen tile every few
	// seconds.
	settleAfter    = 30 * time.Second
	maxResumeAfter = 32 * time.Second
)

// allocMode is what the hysteresis lets the budget decide for a video.
type allocMode int8

const (
	free allocMode = iota // the budget decides
	keep                  // forwarded, not yet to be paused: its lowest layer whatever the budget
	hold                  // paused, not yet to be resumed: nothing whatever the budget
)

// gate is one forwarded video's pause hysteresis. The allocation loop
// owns it (DownTrack.gate).
type gate struct {
	started bool      // the allocator let it through once
	paused  bool      // paused for bandwidth since
	changed time.Time // the last pause or resume
	// Since when a switch has been wanted without a break (zero: not).
	pauseWanted, resumeWanted time.Time
	sawCongestion             bool // the path was congested while a pause was wanted
	// resumeWait is how long this pause waits for calm (0: resumeAfter).
	resumeWait time.Duration
}

// start lets a video through when nothing is capped.
func (g *gate) start(now time.Time) {
	if g.paused {
		metricBandwidthResumes.Inc()
	}
	if g.paused || !g.started {
		*g = gate{started: true, changed: now}
	}
}

// mode is what the allocation may do with the video at now.
func (g *gate) mode(now time.Time) allocMode {
	switch {
	case !g.started:
		return free // a video not shown yet starts as soon as it fits
	case g.paused:
		if ready(now, g.resumeWanted, max(g.resumeWait, resumeAfter)) && now.Sub(g.changed) >= minDwell {
			return free
		}
		return hold
	case ready(now, g.pauseWanted, pauseAfter) && g.sawCongestion && now.Sub(g.changed) >= minDwell:
		return free
	}
	return keep
}

// ready reports whether a want held since since has lasted d by now.
func ready(now, since time.Time, d time.Duration) bool {
	return !since.IsZero() && now.Sub(since) >= d
}

// evidence is how the path looked at an allocation: calm lets a paused
// video resume; trouble, with congestion at some point, lets one that
// does not fit pause.
type evidence struct{ calm, troubled, congested bool }

// observe records an allocation: whether the video is forwarded now,
// whether its lowest layer fitted the budget, and how the path looked.
func (g *gate) observe(now time.Time, forwarded, fitted bool, ev evidence) {
	switch {
	case !g.started:
		if forwarded {
			g.started, g.changed = true, now
		}
	case g.paused && forwarded:
		*g = gate{started: true, changed: now, resumeWait: g.resumeWait}
		metricBandwidthResumes.Inc()
	case !g.paused && !forwarded:
		wait := resumeAfter
		if now.Sub(g.changed) < settleAfter && g.resumeWait > 0 {
			wait = min(2*g.resumeWait, maxResumeAfter)
		}
		*g = gate{started: true, paused: true, changed: now, resumeWait: wait}
		metricBandwidthPauses.Inc()
	case g.paused:
		g.resumeWanted = since(g.resumeWanted, now, fitted && ev.calm)
	default:
		g.pauseWanted = since(g.pauseWanted, now, !fitted && ev.troubled)
		g.sawCongestion = !g.pauseWanted.IsZero() && (g.sawCongestion || ev.congested)
	}
}

// since keeps the start of a want that goes on, starts one, or clears it.
func since(t, now time.Time, wanted bool) time.Time {
	switch {
	case !wanted:
		return time.Time{}
	case t.IsZero():
		return now
	}
	return t
}
