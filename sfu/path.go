package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/sfu/bwe"
	"github.com/confab-sfu/confab/sfu/queuing"
	"github.com/confab-sfu/confab/sfu/rate"
	"github.com/confab-sfu/confab/sfu/twcc"
	"github.com/pion/rtcp"
)

// pathEstimator is what the allocator learns of a subscriber's path: the
// seam between estimation and allocation. It takes the subscriber's
// feedback as it arrives (on the DownTracks' RTCP readers, concurrently)
// and hands the allocation loop one period's signals: the estimator's
// rate, loss, the standing queue, the rate delivered.
type pathEstimator interface {
	transportFeedback(p *rtcp.TransportLayerCC, now time.Time)
	receiverEstimate(bps int64)
	signals(now time.Time) rate.Signals
}

// sendPath is one subscriber's send side, Confab's own end to end: the
// DownTracks number every packet they write in its transport-wide history
// (sfu/twcc), and the subscriber's TWCC feedback, matched against that
// history, feeds the bandwidth estimator (sfu/bwe) and the queue and
// delivery measures (sfu/queuing). A subscriber without TWCC is judged on
// its REMB.
type sendPath struct {
	hist *twcc.History
	// streams: bound streams with (1) and without (2) transport-wide numbers
	streams atomic.Uint32
	twcc    atomic.Bool  // the subscriber sends TWCC feedback
	remb    atomic.Int64 // the subscriber's last REMB, bit/s

	// Feedback arrives on several DownTracks' RTCP readers; the
	// allocation loop reads the results.
	mu       sync.Mutex
	est      *bwe.Estimator
	results  []bwe.Packet // reused for every report
	mon      queuing.Monitor
	delivery queuing.Delivery
	// Packet counts since the last period: a fast loss signal.
	fbTotal, fbReceived int64
}

// feedbackResults is the capacity the per-report results start with: a
// report covers ~100 ms, 25 packets of a 250 packets a second downlink. A
// busier subscriber's results grow once to what its reports need (every
// subscriber has one: the memory counts).
const feedbackResults = 64

func newSendPath() *sendPath {
	h, err := twcc.NewHistory(twcc.DefaultSize)
	if err != nil {
		panic(err) // DefaultSize is valid: a programming error
	}
	est, err := bwe.New(bwe.Config{Initial: initialEstimate, Min: minEstimate, Max: maxEstimate})
	if err != nil {
		panic(err) // the bounds below are consistent: a programming error
	}
	return &sendPath{hist: h, est: est, results: make([]bwe.Packet, 0, feedbackResults)}
}

// monoEpoch anchors the monotonic clock departures are stamped with.
var monoEpoch = time.Now()

// stamp numbers one packet of size bytes leaving now and returns its
// transport-wide sequence number. Several publishers' readers write to
// one subscriber at once: the history's lock serializes them.
func (s *sendPath) stamp(size int, padding bool) uint16 {
	return s.hist.Stamp(size, padding, int64(time.Since(monoEpoch)))
}

// streamBound notes that a stream was bound, numbered (twcc) or not.
func (s *sendPath) streamBound(twcc bool) {
	if twcc {
		s.streams.Or(1)
	} else {
		s.streams.Or(2)
	}
}

// expected reports whether TWCC feedback is, or will be, measured: some
// stream carries transport-wide numbers, or none was bound yet (Confab
// always offers them, and a subscriber normally takes them).
func (s *sendPath) expected() bool {
	st := s.streams.Load()
	return st == 0 || st&1 != 0
}

// transportFeedback matches one TWCC report with the history and feeds
// every packet's result to the estimator, the queue monitor and the
// delivered rate. From the first report on, the estimate is ours rather
// than the subscriber's REMB.
func (s *sendPath) transportFeedback(fb *rtcp.TransportLayerCC, now time.Time) {
	s.twcc.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	// A malformed report still gives the results read before the fault.
	res, c, _ := s.hist.Feedback(fb, s.results)
	s.results = res[:0]
	s.fbTotal += int64(c.Received + c.Lost)
	s.fbReceived += int64(c.Received)
	for i := range res {
		r := &res[i]
		if r.Lost {
			continue
		}
		// One-way delay and arrival in µs, as package queuing counts.
		s.mon.Add((r.Arrival-r.Sent)/1000, now)
		s.delivery.Add(r.Arrival/1000, r.Size)
	}
	s.est.Update(res, now)
}

// receiverEstimate records the subscriber's REMB, bit/s.
func (s *sendPath) receiverEstimate(bps int64) { s.remb.Store(bps) }

// signals returns what the path showed since the previous call.
func (s *sendPath) signals(now time.Time) rate.Signals {
	var sig rate.Signals
	s.mu.Lock()
	total, recv := s.fbTotal, s.fbReceived
	s.fbTotal, s.fbReceived = 0, 0
	if total > 0 {
		sig.Loss, sig.HaveLoss = float64(total-recv)/float64(total), true
	}
	sig.Queue, sig.HaveQueue = s.mon.Queuing(now)
	sig.Delivered, _ = s.delivery.Rate()
	target := s.est.Target()
	s.mu.Unlock()
	// Ours when the subscriber sends TWCC feedback, else its REMB, else
	// nothing.
	twcc := s.twcc.Load()
	if twcc {
		sig.Estimate = target
	} else {
		sig.Estimate = s.remb.Load()
	}
	// Feedback arrives, or is still expected: a subscriber that took
	// transport-wide numbers but sends REMB instead is judged on its REMB.
	sig.Feedback = twcc || (s.expected() && sig.Estimate == 0)
	return sig
}
