package sfu

import (
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// recorderFeedback builds the TWCC reports a pion receiver would send for
// what it recorded, through the wire format.
func recorderFeedback(t *testing.T, rec *twcc.Recorder) []*rtcp.TransportLayerCC {
	t.Helper()
	var out []*rtcp.TransportLayerCC
	for _, p := range rec.BuildFeedbackPacket() {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var fb rtcp.TransportLayerCC
		if err := fb.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		out = append(out, &fb)
	}
	return out
}

// Transport-wide feedback replaces REMB as the estimate's source, and its
// loss counts are one period's loss.
func TestSendPathSignals(t *testing.T) {
	p := newSendPath()
	if s := p.signals(time.Now()); s.Estimate != 0 || !s.Feedback {
		t.Fatalf("signals before any stream or feedback %+v: feedback is expected", s)
	}
	p.receiverEstimate(700_000)
	if s := p.signals(time.Now()); s.Estimate != 700_000 || s.HaveLoss || s.Feedback {
		t.Fatalf("REMB signals %+v", s)
	}
	// 200 packets numbered; the receiver got all but 10 of the first 100.
	rec := twcc.NewRecorder(1)
	arrival := int64(1_000_000)
	for i := range 200 {
		seq := p.stamp(1200, false)
		arrival += 1000
		if i >= 100 || i%10 != 3 {
			rec.Record(1, seq, arrival)
		}
	}
	for _, fb := range recorderFeedback(t, rec) {
		p.transportFeedback(fb, time.Now())
	}
	s := p.signals(time.Now())
	if !s.HaveLoss || s.Loss != 0.05 {
		t.Fatalf("loss %v %v, want 5 %%", s.Loss, s.HaveLoss)
	}
	if !s.Feedback || s.Estimate <= 0 || s.Estimate != p.est.Target() {
		t.Fatalf("signals %+v: want feedback and the estimator's rate (%d)", s, p.est.Target())
	}
	if s := p.signals(time.Now()); s.HaveLoss {
		t.Fatal("loss reported twice")
	}
	// The same reports again (pion hands a compound packet to every
	// sender it names): nothing new.
	for _, fb := range recorderFeedback(t, rec) {
		p.transportFeedback(fb, time.Now())
	}
	if s := p.signals(time.Now()); s.HaveLoss {
		t.Fatalf("repeated feedback counted again: loss %v", s.Loss)
	}
}

// Departures numbered on sending and TWCC arrivals give the queuing delay
// the allocator hands the prober.
func TestQueueFromFeedback(t *testing.T) {
	p := newSendPath()
	now := time.Now()
	sent := int64(time.Hour) // the send path's monotonic clock
	for i := range 10 {
		p.hist.Stamp(1000, false, sent+int64(i)*10_000_000)
	}
	// The receiver's clock is unrelated to ours; the first half of the
	// packets took 5 ms, the rest waited 40 ms more in a queue. Arrivals
	// are µs on the receiver's clock, from its reference time 5.
	report := func(from, to int, extra int64) *rtcp.TransportLayerCC {
		fb := &rtcp.TransportLayerCC{BaseSequenceNumber: uint16(from), PacketStatusCount: uint16(to - from), ReferenceTime: 5,
			PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: uint16(to - from)}}}
		last := int64(0)
		for i := from; i < to; i++ {
			arrival := int64(i)*10_000 + 5_000 + extra
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: arrival - last})
			last = arrival
		}
		return fb
	}
	p.transportFeedback(report(0, 5, 0), now)
	if s := p.signals(now); !s.HaveQueue || s.Queue != 0 {
		t.Fatalf("queuing %v %v, want 0", s.Queue, s.HaveQueue)
	}
	later := now.Add(600 * time.Millisecond)
	p.transportFeedback(report(5, 10, 40_000), later)
	s := p.signals(later)
	if !s.HaveQueue || s.Queue < 35*time.Millisecond {
		t.Fatalf("queuing %v %v, want about 40 ms", s.Queue, s.HaveQueue)
	}
	// Ten packets of 1000 bytes arrived over 130 ms (the first at 5 ms,
	// the last at 135): too short to tell a rate.
	if s.Delivered != 0 {
		t.Fatalf("a delivered rate %d from 130 ms of arrivals", s.Delivered)
	}
}
