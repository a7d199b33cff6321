package sfu

import (
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/queuing"
	"github.com/pion/rtcp"
)

// TWCC reports list packets by status chunks, with a receive delta for each
// received one; arrival times add up from the reference time.
func TestTWCCArrivals(t *testing.T) {
	fb := &rtcp.TransportLayerCC{
		MediaSSRC: 1, BaseSequenceNumber: 65534, PacketStatusCount: 6, ReferenceTime: 10,
		PacketChunks: []rtcp.PacketStatusChunk{
			&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 2},
			&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: []uint16{
				rtcp.TypeTCCPacketNotReceived, rtcp.TypeTCCPacketReceivedLargeDelta, rtcp.TypeTCCPacketReceivedSmallDelta,
				rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketNotReceived, rtcp.TypeTCCPacketNotReceived, rtcp.TypeTCCPacketNotReceived}},
		},
		RecvDeltas: []*rtcp.RecvDelta{
			{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 1000},
			{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250},
			{Type: rtcp.TypeTCCPacketReceivedLargeDelta, Delta: -500},
			{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 20000},
			{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 0},
		},
	}
	parsed := *fb
	type got struct {
		seq     uint16
		arrival int64
	}
	var arrivals []got
	twccArrivals(&parsed, func(seq uint16, arrival int64) { arrivals = append(arrivals, got{seq, arrival}) })
	// Six statuses: 65534, 65535 received; 0 lost; 1, 2, 3 received. The
	// vector's last three symbols are beyond the count.
	base := int64(10 * 64_000)
	want := []got{{65534, base + 1000}, {65535, base + 1250}, {1, base + 750}, {2, base + 20750}, {3, base + 20750}}
	if len(arrivals) != len(want) {
		t.Fatalf("arrivals %v, want %v", arrivals, want)
	}
	for i := range want {
		if arrivals[i] != want[i] {
			t.Fatalf("arrivals %v, want %v", arrivals, want)
		}
	}
	// A report with fewer deltas than received statuses stops there.
	parsed.RecvDeltas = parsed.RecvDeltas[:1]
	n := 0
	twccArrivals(&parsed, func(uint16, int64) { n++ })
	if n != 1 {
		t.Fatalf("%d arrivals from a report with one delta", n)
	}
}

// Departures recorded on sending and TWCC arrivals give the queuing delay
// the allocator hands the prober.
func TestDelaysFromFeedback(t *testing.T) {
	q := &delays{deps: &queuing.Departures{}}
	now := time.Now()
	sent := now.Add(-time.Second)
	for i := range 10 {
		q.deps.Record(uint16(100+i), sent.Add(time.Duration(i)*10*time.Millisecond).UnixNano(), 1000)
	}
	// The receiver's clock is unrelated to ours; the first half of the
	// packets took 5 ms, the rest waited 40 ms more in a queue. Arrivals
	// are µs on the receiver's clock, from its reference time 5.
	report := func(from, to int, extra int64) *rtcp.TransportLayerCC {
		fb := &rtcp.TransportLayerCC{BaseSequenceNumber: uint16(100 + from), PacketStatusCount: uint16(to - from), ReferenceTime: 5,
			PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: uint16(to - from)}}}
		last := int64(0)
		for i := from; i < to; i++ {
			arrival := int64(i)*10_000 + 5_000 + extra
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: arrival - last})
			last = arrival
		}
		return fb
	}
	q.feedback(report(0, 5, 0), now)
	if d, ok := q.queuing(now); !ok || d != 0 {
		t.Fatalf("queuing %v %v, want 0", d, ok)
	}
	q.feedback(report(5, 10, 40_000), now.Add(600*time.Millisecond))
	if d, ok := q.queuing(now.Add(600 * time.Millisecond)); !ok || d < 35*time.Millisecond {
		t.Fatalf("queuing %v %v, want about 40 ms", d, ok)
	}
	// Ten packets of 1000 bytes arrived over 130 ms (the first at 5 ms,
	// the last at 135): too short to tell a rate.
	if bps, ok := q.delivered(); ok {
		t.Fatalf("a delivered rate %d from 130 ms of arrivals", bps)
	}
	// Without departures (a Peer built in tests) nothing is measured.
	var none *delays
	none.feedback(report(0, 5, 0), now)
	if _, ok := none.queuing(now); ok {
		t.Fatal("queuing known without departures")
	}
}
