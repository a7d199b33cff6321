package bwe

import (
	"math/rand"
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/probe"
	"github.com/confab-sfu/confab/sfu/queuing"
)

// link models a subscriber's downlink: a bottleneck of rate bit/s whose
// queue holds at most queue ns of traffic (more is dropped), a
// propagation delay, random loss, and receivers that stamp arrivals late
// by 0..jitter ns (Firefox stamps after its network thread hands packets
// on). With reorder the lateness is drawn per packet, so stamps can go
// backwards; otherwise stamps keep arrival order, as batching does.
type link struct {
	rate    int64 // bit/s; 0 is no bottleneck
	queue   int64 // ns
	delay   int64 // ns
	loss    float64
	jitter  int64 // ns
	reorder bool
	late    float64 // share of packets held 50-150 ms on the path (reordered)
	rng     *rand.Rand
	free    int64 // when the bottleneck has sent everything queued
	stamp   int64 // the last arrival stamp, for ordered jitter
}

// carry returns when a packet of size bytes sent at sent is stamped as
// arrived, or false when the link dropped it.
func (l *link) carry(sent int64, size int) (int64, bool) {
	if l.loss > 0 && l.rng.Float64() < l.loss {
		return 0, false
	}
	out := sent
	if l.rate > 0 {
		start := max(sent, l.free)
		if start-sent > l.queue {
			return 0, false // the queue is full
		}
		l.free = start + int64(size)*8*int64(time.Second)/l.rate
		out = l.free
	}
	at := out + l.delay
	if l.jitter > 0 {
		at += l.rng.Int63n(l.jitter)
	}
	if l.late > 0 && l.rng.Float64() < l.late {
		return at + 50_000_000 + l.rng.Int63n(100_000_000), true
	}
	if !l.reorder {
		at = max(at, l.stamp)
		l.stamp = at
	}
	return at, true
}

// inFlight is a sent packet the receiver has not reported received yet.
type inFlight struct {
	p            Packet
	dropped      bool
	reportedLost bool
}

// point is the state after one feedback report.
type point struct {
	at      time.Duration // since the start
	target  int64
	usage   Usage
	acked   int64
	sending int64 // bit/s the sender chose
	loss    float64
}

const (
	simPacket   = 1200                   // bytes
	simFeedback = 100 * time.Millisecond // how often the receiver reports
)

// sim runs a sender, a link and a receiver that reports TWCC-like
// feedback every 100 ms. The sender behaves as Confab's allocator does:
// media at the target (up to what it wants to send), and, while it holds
// back, probes with padding as package probe decides, with the queuing
// delay of package queuing as its congestion signal.
type sim struct {
	est     *Estimator
	link    *link
	prober  probe.Prober
	queue   queuing.Monitor // the allocator's queue measure, for the prober
	desired int64           // bit/s the sender would send if it could
	noProbe bool
	floor   int64 // what a clean probe showed fits, until trouble

	start, now time.Time
	nextSend   int64 // ns since start
	nextReport int64
	seq        int64
	flying     []inFlight
	reports    []report
	media      int64 // bit/s chosen at the last feedback
	pad        int64 // bit/s of padding on top, while probing
	sent, lost int   // packets sent, dropped by the link
	drops      []time.Duration
	late       int // packets reported lost, then received
	trace      []point
	gapFrom    time.Duration // the receiver sends no feedback in [gapFrom, gapTo)
	gapTo      time.Duration
}

// report is feedback on its way back to the sender.
type report struct {
	at      int64
	results []Packet
}

func newSim(t testing.TB, l *link, initial, desired int64) *sim {
	t.Helper()
	e, err := New(Config{Initial: initial})
	if err != nil {
		t.Fatal(err)
	}
	if l.rng == nil {
		l.rng = rand.New(rand.NewSource(1))
	}
	start := time.Unix(1_000_000, 0)
	return &sim{est: e, link: l, desired: desired, start: start, now: start, media: min(initial, desired), nextReport: int64(simFeedback)}
}

// run advances the simulation by d.
func (s *sim) run(d time.Duration) {
	end := s.now.Sub(s.start) + d
	for s.now.Sub(s.start) < end {
		next := min(s.nextSend, s.nextReport)
		if len(s.reports) > 0 {
			next = min(next, s.reports[0].at)
		}
		s.now = s.start.Add(time.Duration(next))
		switch {
		case len(s.reports) > 0 && s.reports[0].at == next:
			s.deliver(s.reports[0].results)
			s.reports = s.reports[1:]
		case next == s.nextReport:
			s.feedback(next)
			s.nextReport += int64(simFeedback)
		default:
			s.send(next)
		}
	}
}

func (s *sim) send(at int64) {
	p := Packet{Seq: s.seq, Sent: at, Size: simPacket}
	s.seq++
	arrival, ok := s.link.carry(at, simPacket)
	p.Arrival = arrival
	s.sent++
	if !ok {
		s.lost++
		s.drops = append(s.drops, time.Duration(at))
	}
	s.flying = append(s.flying, inFlight{p: p, dropped: !ok})
	rate := max(s.media+s.pad, 10_000)
	s.nextSend = at + simPacket*8*int64(time.Second)/rate
}

// feedback builds the receiver's report at now: every packet up to the
// newest one stamped so far, received or (not yet, or never) lost.
func (s *sim) feedback(now int64) {
	if d := time.Duration(now); d >= s.gapFrom && d < s.gapTo {
		return
	}
	newest := int64(-1)
	for _, f := range s.flying {
		if !f.dropped && f.p.Arrival <= now {
			newest = max(newest, f.p.Seq)
		}
	}
	var results []Packet
	keep := s.flying[:0]
	for _, f := range s.flying {
		if f.p.Seq > newest {
			keep = append(keep, f)
			continue
		}
		switch {
		case !f.dropped && f.p.Arrival <= now:
			r := f.p
			r.Late = f.reportedLost
			if r.Late {
				s.late++
			}
			results = append(results, r)
		case !f.reportedLost:
			r := f.p
			r.Lost, r.Arrival = true, 0
			results = append(results, r)
			f.reportedLost = true
			if !f.dropped {
				keep = append(keep, f) // it may still arrive
			}
		case !f.dropped:
			keep = append(keep, f)
		}
	}
	s.flying = keep
	if len(results) > 0 {
		s.reports = append(s.reports, report{at: now + s.link.delay, results: results})
	}
}

// deliver hands a report to the estimator and lets the sender react.
func (s *sim) deliver(results []Packet) {
	s.est.Update(results, s.now)
	lost := 0
	for _, r := range results {
		if r.Lost {
			lost++
		} else {
			s.queue.Add((r.Arrival-r.Sent)/1000, s.now)
		}
	}
	// Trouble as the allocator judges it: a queue of 30 ms or more, or
	// more than 3 % lost. It fails a probe and drops what probes showed.
	queue, _ := s.queue.Queuing(s.now)
	troubled := queue >= 30*time.Millisecond || lost*100 > 3*len(results)
	target := s.est.Target()
	est := target
	if !s.noProbe {
		if troubled {
			s.floor = 0
		}
		if s.prober.Observe(s.now, true, troubled) == probe.Succeeded {
			s.floor = max(s.floor, s.prober.Goal())
		}
		est = max(target, s.floor)
		if s.desired*10 > est*9 && s.prober.Due(s.now) {
			s.prober.Start(s.now, est, s.prober.GoalFor(est, s.desired))
		}
	}
	s.media, s.pad = min(s.desired, est), 0
	if s.prober.Padding() {
		s.pad = max(s.prober.Goal()-s.media, 0)
	}
	s.trace = append(s.trace, point{at: s.now.Sub(s.start), target: target, usage: s.est.State(), acked: s.est.Acknowledged(), sending: s.media + s.pad, loss: s.est.Loss()})
}

// window returns the trace points in [from, to).
func (s *sim) window(from, to time.Duration) []point {
	var out []point
	for _, p := range s.trace {
		if p.at >= from && p.at < to {
			out = append(out, p)
		}
	}
	return out
}

// dropsIn counts the link's drops in [from, to).
func (s *sim) dropsIn(from, to time.Duration) int {
	n := 0
	for _, d := range s.drops {
		if d >= from && d < to {
			n++
		}
	}
	return n
}
