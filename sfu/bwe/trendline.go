package bwe

import "math"

// Usage is what the delay signal says about the path.
type Usage int

// The delay-based detector's verdicts.
const (
	Normal   Usage = iota
	Overuse        // delays grow: a queue is building
	Underuse       // delays shrink: a queue is draining
)

func (u Usage) String() string {
	switch u {
	case Overuse:
		return "overuse"
	case Underuse:
		return "underuse"
	}
	return "normal"
}

// Trendline filter and detector settings (GCC's published defaults, in
// milliseconds where they are times).
const (
	trendWindow    = 20   // samples the slope is fitted over
	trendSmoothing = 0.9  // weight of the old smoothed delay
	trendGain      = 4.0  // the slope is scaled by this ...
	trendMaxCount  = 60   // ... and by the number of samples, up to this
	overuseTimeMs  = 10.0 // the trend must stay above the threshold this long
	thresholdInit  = 12.5
	thresholdMin   = 6.0
	thresholdMax   = 600.0
	thresholdUp    = 0.0087 // how fast the threshold follows a larger trend
	thresholdDown  = 0.039  // ... and a smaller one
	thresholdSpike = 15.0   // a trend this far above the threshold does not move it
	maxAdaptStepMs = 100.0
)

// trendline fits a line to the accumulated, smoothed delay variation over
// the last samples and compares its slope with an adaptive threshold.
type trendline struct {
	accumulated float64 // ms
	smoothed    float64
	x, y        [trendWindow]float64 // arrival ms since the first sample, smoothed delay
	n           int                  // samples held (up to trendWindow)
	next        int                  // ring position of the next sample
	count       int                  // samples since the reset, for the gain
	firstAt     int64                // ns, arrival of the first sample

	trend, prevTrend float64
	threshold        float64
	lastAdapt        int64 // ns, arrival time of the previous adaptation
	overuseMs        float64
	overuseHits      int
	usage            Usage
}

func newTrendline() trendline { return trendline{threshold: thresholdInit} }

// reset forgets the fitted history but keeps the learnt threshold.
func (t *trendline) reset() {
	*t = trendline{threshold: t.threshold}
}

// add folds in one inter-group sample and returns the verdict.
func (t *trendline) add(s sample) Usage {
	if t.count == 0 {
		t.firstAt = s.arrival
	}
	t.count++
	t.accumulated += float64(s.variation) / 1e6
	t.smoothed = trendSmoothing*t.smoothed + (1-trendSmoothing)*t.accumulated
	t.x[t.next] = float64(s.arrival-t.firstAt) / 1e6
	t.y[t.next] = t.smoothed
	t.next = (t.next + 1) % trendWindow
	if t.n < trendWindow {
		t.n++
	}
	if t.n == trendWindow {
		if slope, ok := t.slope(); ok {
			t.prevTrend, t.trend = t.trend, slope
		}
	}
	t.detect(s)
	return t.usage
}

// slope is the least-squares slope of the held samples.
func (t *trendline) slope() (float64, bool) {
	var sx, sy float64
	for i := range t.n {
		sx += t.x[i]
		sy += t.y[i]
	}
	mx, my := sx/float64(t.n), sy/float64(t.n)
	var num, den float64
	for i := range t.n {
		dx := t.x[i] - mx
		num += dx * (t.y[i] - my)
		den += dx * dx
	}
	if den == 0 {
		return 0, false
	}
	return num / den, true
}

// detect compares the scaled trend with the threshold. Overuse needs the
// trend above the threshold for overuseTimeMs over more than one sample,
// and not falling: a queue that already drains is no reason to cut.
func (t *trendline) detect(s sample) {
	scaled := t.trend * float64(min(t.count, trendMaxCount)) * trendGain
	switch {
	case scaled > t.threshold:
		if t.overuseHits == 0 {
			t.overuseMs = float64(s.sendDelta) / 2e6
		} else {
			t.overuseMs += float64(s.sendDelta) / 1e6
		}
		t.overuseHits++
		if t.overuseMs > overuseTimeMs && t.overuseHits > 1 && t.trend >= t.prevTrend {
			t.overuseMs, t.overuseHits = 0, 0
			t.usage = Overuse
		}
	case scaled < -t.threshold:
		t.overuseMs, t.overuseHits = 0, 0
		t.usage = Underuse
	default:
		t.overuseMs, t.overuseHits = 0, 0
		t.usage = Normal
	}
	t.adapt(scaled, s.arrival)
}

// adapt moves the threshold toward the trend's magnitude: slowly up, so
// that noise raises it without hiding a real queue, faster down.
func (t *trendline) adapt(scaled float64, at int64) {
	mag := math.Abs(scaled)
	if t.lastAdapt == 0 {
		t.lastAdapt = at
	}
	if mag > t.threshold+thresholdSpike {
		t.lastAdapt = at
		return
	}
	k := thresholdUp
	if mag < t.threshold {
		k = thresholdDown
	}
	dt := min(float64(at-t.lastAdapt)/1e6, maxAdaptStepMs)
	t.threshold = min(max(t.threshold+k*(mag-t.threshold)*dt, thresholdMin), thresholdMax)
	t.lastAdapt = at
}
