package sfu

import (
	"testing"
	"time"
)

// Every forwarded packet carries the subscriber's next transport-wide
// number, tracks of one subscriber share the numbering, and the sender
// report maps the rewritten timestamps to the wall clock and counts what
// was sent.
func TestForwardStampsAndReports(t *testing.T) {
	r, downs, ws := newTestReceiver(1, 1)
	// A second track to the same subscriber (audio-like, its own SSRC).
	r2, downs2, ws2 := newTestReceiver(1, 1)
	sub := downs[0].peer
	d2 := downs2[0]
	d2.peer = sub
	ws[0].keep, ws2[0].keep = true, true
	var f, f2 feeder
	start := time.Unix(1_800_000_000, 0)
	for i := range 10 {
		f.send(r, 0, i == 0, start.Add(time.Duration(i)*33*time.Millisecond).UnixNano())
		f2.send(r2, 0, i == 0, start.Add(time.Duration(i)*33*time.Millisecond).UnixNano())
	}
	if len(ws[0].twcc) != 10 || len(ws2[0].twcc) != 10 {
		t.Fatalf("numbered packets %d and %d, want 10 each", len(ws[0].twcc), len(ws2[0].twcc))
	}
	for i := range 10 {
		if ws[0].twcc[i] != uint16(2*i) || ws2[0].twcc[i] != uint16(2*i+1) {
			t.Fatalf("packet %d numbered %d and %d, want %d and %d", i, ws[0].twcc[i], ws2[0].twcc[i], 2*i, 2*i+1)
		}
	}
	if n := sub.send.hist.Sent(); n != 20 {
		t.Fatalf("history holds %d packets, want 20", n)
	}

	// Half a second after the last packet (which arrived at 297 ms) the
	// RTP time is the last timestamp plus 0.5 s of the 90 kHz clock.
	at := start.Add(797 * time.Millisecond)
	sr, ok := downs[0].senderReport(at)
	if !ok {
		t.Fatal("no sender report after media")
	}
	if want := ws[0].lastTS + 45_000; sr.RTPTime != want {
		t.Fatalf("RTP time %d, want %d", sr.RTPTime, want)
	}
	if sr.SSRC != downs[0].ssrc || sr.PacketCount != 10 || sr.OctetCount != uint32(ws[0].payload) {
		t.Fatalf("report %+v: want ssrc %d, 10 packets, %d octets", sr, downs[0].ssrc, ws[0].payload)
	}
	if sec := sr.NTPTime >> 32; sec != uint64(at.Unix())+ntpEpochOffset {
		t.Fatalf("NTP seconds %d, want %d", sec, uint64(at.Unix())+ntpEpochOffset)
	}
	if frac := sr.NTPTime & 0xffffffff; frac < 797<<32/1000-1 || frac > 797<<32/1000+1 {
		t.Fatalf("NTP fraction %d, want 0.797 s", frac)
	}
	// Nothing forwarded yet: no report.
	_, downs3, _ := newTestReceiver(1, 1)
	if _, ok := downs3[0].senderReport(at); ok {
		t.Fatal("a sender report before any media")
	}
}

// Stamping and the sender report's counters allocate nothing per packet.
func TestForwardWithStampingAllocatesNothing(t *testing.T) {
	r, _, _ := newTestReceiver(1, 3)
	var f feeder
	now := time.Now().UnixNano()
	f.send(r, 0, true, now)
	raw, pkt := f.packet(0, false)
	l := r.layers[0].Load()
	if a := testing.AllocsPerRun(500, func() {
		pkt.SequenceNumber++
		pkt.Timestamp += 3000
		r.handlePacket(l, raw, pkt, now)
	}); a != 0 {
		t.Fatalf("%v allocations per forwarded packet", a)
	}
}
