package bwe

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for a zero Config.
const (
	DefaultInitial = 300_000
	DefaultMin     = 30_000
	DefaultMax     = 50_000_000
)

// drainTime is how long after a decrease the acknowledged rate still
// shows the queue draining rather than what the target sends.
const drainTime = 1_000_000_000

// ErrConfig refuses bounds that contradict each other.
var ErrConfig = errors.New("bwe: invalid config")

// Config bounds an Estimator; zero fields take the defaults.
type Config struct {
	Initial int64 // bit/s the target starts at
	Min     int64 // bit/s the target never goes below
	Max     int64 // bit/s the target never goes above
}

// Estimator is one subscriber's bandwidth estimate.
type Estimator struct {
	cfg      Config
	groups   grouper
	trend    trendline
	rate     aimd
	loss     lossBound
	acked    ackedRate
	usage    Usage
	target   int64
	ackedBps int64
	meanSize float64 // bytes, smoothed
}

// New makes an estimator starting at cfg.Initial.
func New(cfg Config) (*Estimator, error) {
	if cfg.Min == 0 {
		cfg.Min = DefaultMin
	}
	if cfg.Max == 0 {
		cfg.Max = DefaultMax
	}
	if cfg.Initial == 0 {
		cfg.Initial = min(max(DefaultInitial, cfg.Min), cfg.Max)
	}
	if cfg.Min < 0 || cfg.Max < cfg.Min || cfg.Initial < cfg.Min || cfg.Initial > cfg.Max {
		return nil, fmt.Errorf("new estimator: initial %d, min %d, max %d bit/s: %w", cfg.Initial, cfg.Min, cfg.Max, ErrConfig)
	}
	e := &Estimator{cfg: cfg, trend: newTrendline(), target: cfg.Initial, meanSize: 1200}
	e.rate.target = float64(cfg.Initial)
	return e, nil
}

// Target is the estimate, bit/s: what the subscriber's media may use.
func (e *Estimator) Target() int64 { return e.target }

// State is the delay-based detector's latest verdict.
func (e *Estimator) State() Usage { return e.usage }

// Acknowledged is the rate the receiver reported receiving over the last
// half second, bit/s (padding included); 0 before it is known.
func (e *Estimator) Acknowledged() int64 { return e.ackedBps }

// Loss is the share of packets the last judged feedback reported lost.
func (e *Estimator) Loss() float64 { return e.loss.share }

// Update folds in one feedback report's results (in the order reported)
// received at now. An empty report changes nothing: time alone is no
// evidence that the path can carry more.
func (e *Estimator) Update(results []Packet, now time.Time) {
	if len(results) == 0 {
		return
	}
	for i := range results {
		e.add(&results[i])
	}
	at := now.UnixNano()
	e.ackedBps = e.acked.rate()
	acked := float64(e.ackedBps)
	e.rate.update(e.usage, acked, e.meanSize*8, at)
	// What the path delivered without a queue growing or packets going
	// missing, it can carry: a successful probe lifts the target at once.
	// Not while a queue drains after a decrease: the path then delivers
	// its capacity, which is more than the decrease means to send.
	if e.usage == Normal && !e.rate.holding && at-e.rate.lastDecrease > drainTime && at-e.loss.lastCut > drainTime &&
		(!e.loss.judged || e.loss.share < lossLow) && acked > e.rate.target {
		e.rate.target = acked
	}
	e.loss.judge(e.rate.target, acked, at)
	if e.loss.bound > 0 {
		// The delay-based controller grows from the bound, not from where
		// it was before the loss.
		e.rate.target = min(e.rate.target, e.loss.bound)
	}
	e.rate.target = min(max(e.rate.target, float64(e.cfg.Min)), float64(e.cfg.Max))
	e.target = int64(e.rate.target)
}

// add folds in one packet's result.
func (e *Estimator) add(p *Packet) {
	e.loss.count(p)
	if p.Lost {
		return
	}
	e.acked.add(p.Arrival, p.Size)
	e.meanSize = 0.95*e.meanSize + 0.05*float64(p.Size)
	if p.Late {
		return // its group is long gone: no delay information
	}
	s, ok, reset := e.groups.add(p)
	if reset {
		e.trend.reset()
		e.usage = Normal
	}
	if ok {
		e.usage = e.trend.add(s)
	}
}
