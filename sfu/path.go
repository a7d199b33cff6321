package sfu

import (
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/sfu/rate"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
)

// pathEstimator is what the allocator learns of a subscriber's path: the
// seam between estimation and allocation. It takes the subscriber's
// feedback as it arrives (on the DownTracks' RTCP readers, concurrently)
// and hands the allocation loop one period's signals: the estimator's
// rate, loss, the standing queue, the rate delivered. pionPath builds them
// from pion's GCC and Confab's own queue and delivery measures; an
// estimator of Confab's own, on the same TWCC feedback, can replace it
// behind these three methods.
type pathEstimator interface {
	transportFeedback(p *rtcp.TransportLayerCC, now time.Time)
	receiverEstimate(bps int64)
	signals(now time.Time) rate.Signals
}

// pionPath estimates with pion's send-side GCC (its interceptor sees every
// packet and every TWCC report) or the subscriber's REMB, and measures
// loss, queue and delivery from the TWCC reports itself.
type pionPath struct {
	est    cc.BandwidthEstimator // GCC on this subscriber's TWCC (nil in tests)
	twcc   atomic.Bool           // the subscriber sends TWCC feedback
	remb   atomic.Int64          // the subscriber's last REMB, bit/s
	delays *delays               // one-way delays and delivery (nil deps in tests)
	// TWCC packet counts since the last period: a fast loss signal.
	fbTotal, fbReceived atomic.Int64
}

func newPionPath(est cc.BandwidthEstimator, d *delays) *pionPath {
	return &pionPath{est: est, delays: d}
}

// transportFeedback counts one TWCC report's packets and measures their
// delays and sizes. From the first report on, the estimate is GCC's rather
// than REMB's.
func (p *pionPath) transportFeedback(fb *rtcp.TransportLayerCC, now time.Time) {
	p.twcc.Store(true)
	p.fbTotal.Add(int64(fb.PacketStatusCount))
	p.fbReceived.Add(int64(len(fb.RecvDeltas)))
	p.delays.feedback(fb, now)
}

// receiverEstimate records the subscriber's REMB, bit/s.
func (p *pionPath) receiverEstimate(bps int64) { p.remb.Store(bps) }

// signals returns what the path showed since the previous call.
func (p *pionPath) signals(now time.Time) rate.Signals {
	var s rate.Signals
	total, recv := p.fbTotal.Swap(0), p.fbReceived.Swap(0)
	if total > 0 {
		s.Loss, s.HaveLoss = float64(total-recv)/float64(total), true
	}
	s.Queue, s.HaveQueue = p.delays.queuing(now)
	s.Delivered, _ = p.delays.delivered()
	// GCC when the subscriber sends TWCC feedback, else its REMB, else
	// nothing.
	twcc := p.twcc.Load()
	if twcc && p.est != nil {
		s.Estimate = int64(p.est.GetTargetBitrate())
	} else {
		s.Estimate = p.remb.Load()
	}
	// Feedback arrives, or is still expected: a subscriber that took
	// transport-wide numbers but sends REMB instead is judged on its REMB.
	s.Feedback = twcc || (p.delays.expected() && s.Estimate == 0)
	return s
}
