package loadtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
)

// vp8Packets packetizes frame as the clip source does, with picture id pid.
func vp8Packets(frame []byte, pid uint16) [][]byte {
	p := &codecs.VP8Payloader{EnablePictureID: true}
	for range pid {
		p.Payload(1200, []byte{0}) // each call moves the picture id on
	}
	return p.Payload(1200, frame)
}

// rewritePictureID gives a VP8 payload a 15-bit picture id, as the server
// does when it splices layers: the descriptor grows by a byte.
func rewritePictureID(payload []byte, pid uint16) []byte {
	d := vp8Media(payload)
	head := []byte{payload[0] | 0x80, 0x80, 0x80 | byte(pid>>8&0x7f), byte(pid)}
	return append(head, d...)
}

func randomFrame(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] &^= 1 // a keyframe tag
	return b
}

// TestSendLogMatches: a packet is found by its media bytes whatever the
// server did to its descriptor, with the time it was sent; other bytes,
// sends older than the window and lookups before the send are not found.
func TestSendLogMatches(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var m delayMatcher
	log := m.newLog("room", nil)
	t0 := time.Now()
	frame := randomFrame(r, 3000) // three packets
	sent := vp8Packets(frame, 5)
	for i, p := range sent {
		log.sent(vp8Media(p), t0.Add(time.Duration(i)*time.Millisecond))
	}
	for i, p := range sent {
		got := rewritePictureID(p, 300+uint16(i))
		if bytes.Equal(got[:4], p[:4]) {
			t.Fatal("the rewrite did not change the descriptor")
		}
		at, ok := log.sentAt(vp8Media(got), clockAt(t0.Add(2*time.Second)))
		if want := clockAt(t0.Add(time.Duration(i) * time.Millisecond)); !ok || at != want {
			t.Errorf("packet %d: found %v at %d, want the send at %d", i, ok, at, want)
		}
	}
	other := vp8Packets(randomFrame(r, 500), 5)[0]
	if _, ok := log.sentAt(vp8Media(other), clockAt(t0.Add(time.Second))); ok {
		t.Error("a packet never sent was found")
	}
	if _, ok := log.sentAt(vp8Media(sent[0]), clockAt(t0.Add(matchWindow+time.Millisecond))); ok {
		t.Error("a send older than the window was found")
	}
	if _, ok := log.sentAt(vp8Media(sent[2]), clockAt(t0)); ok {
		t.Error("a packet was found before it was sent")
	}
	// Sent again (the clip looped, or jumped to a keyframe): the newest
	// send is the one found.
	log.sent(vp8Media(sent[1]), t0.Add(time.Second))
	if at, _ := log.sentAt(vp8Media(sent[1]), clockAt(t0.Add(1100*time.Millisecond))); at != clockAt(t0.Add(time.Second)) {
		t.Errorf("after a second send, found the send at %d, want the newer one", at)
	}
}

// TestSendLogHoldsTheWindow: 3 s of about 300 packets a second, from the
// camera's three layers and the microphone, are all still found.
func TestSendLogHoldsTheWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var m delayMatcher
	log := m.newLog("room", nil)
	t0 := time.Now()
	const n = 900
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = randomFrame(r, 100+r.IntN(1100))
		log.sent(payloads[i], t0.Add(time.Duration(i)*matchWindow/n))
	}
	found := 0
	for _, p := range payloads {
		if _, ok := log.sentAt(p, clockAt(t0.Add(matchWindow))); ok {
			found++
		}
	}
	// Losing one takes 9 sends in one bucket of 8 (odds well under 1 in
	// 1,000 here): allow a few rather than none.
	if found < n-5 {
		t.Errorf("%d of %d sends in the window found", found, n)
	}
}

// TestDelayRecordKeepsRepairsApart: in-order packets are timed, a repair
// (behind a newer packet) is counted and timed apart, a packet whose send
// is unknown counts as unmatched; padding-only packets are not measured,
// nor anything outside the media window.
func TestDelayRecordKeepsRepairsApart(t *testing.T) {
	var m delayMatcher
	log := m.newLog("room", nil)
	td := trackDelay{m: &m, log: log}
	t0 := time.Now()
	payload := func(i int) []byte { return []byte(fmt.Sprintf("opus packet %d", i)) }
	for i := range 100 {
		log.sentAudio(payload(i))
	}
	if _, measured, _ := td.lookup(payload(1), t0); measured {
		t.Fatal("measured before the media window")
	}
	m.measuring.Store(true)
	var rec delayRecord
	now := time.Now()
	receive := func(p []byte, fresh bool, at time.Time) {
		t.Helper()
		sent, measured, found := td.lookup(p, at)
		if measured {
			rec.record(fresh, found, time.Duration(clockAt(at)-sent))
		}
	}
	var want []float64 // the delays in milliseconds
	for i := range 90 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		sent, _ := log.sentAt(payload(i), clockAt(at))
		want = append(want, float64(clockAt(at)-sent)/1e6)
		receive(payload(i), true, at)
	}
	receive(payload(95), false, now.Add(200*time.Millisecond)) // a repair
	receive(nil, true, now)                                    // padding only
	receive([]byte("never sent"), true, now)
	st := rec.stats()
	if st.Matched != 90 || st.Unmatched != 1 || st.Repairs != 1 || st.Packets != 92 {
		t.Fatalf("stats %+v: want 90 matched, 1 unmatched, 1 repair, 92 packets", st)
	}
	if w := percentiles(want); st.Millis.P50 < w.P50*0.97 || st.Millis.P50 > w.P50*1.03 || st.Millis.P99 < w.P99*0.97 || st.Millis.P99 > w.P99*1.03 {
		t.Errorf("delay %+v, want %+v within 3 %%", st.Millis, w)
	}
	if st.RepairMillis.Max < 200 || st.RepairMillis.P50 < 200*0.97 {
		t.Errorf("repair delay %+v, want over 200 ms (p50 within the 3 %% of a bucket)", st.RepairMillis)
	}
}

// TestLogForTellsPublishers: a track is matched to the log of its room's
// only publisher when the publisher's id is unknown (WHIP), and to none
// when the room has several it cannot tell apart.
func TestLogForTellsPublishers(t *testing.T) {
	var m delayMatcher
	a := m.newLog("a", nil)
	if got := m.logFor("a", "P1"); got != a {
		t.Error("the only publisher of room a was not found")
	}
	m.newLog("b", nil)
	m.newLog("b", nil)
	if got := m.logFor("b", "P2"); got != nil {
		t.Error("a track of room b was given to one of two publishers it cannot tell apart")
	}
	if got := m.logFor("c", ""); got != nil {
		t.Error("a track of a room without publishers got a log")
	}
}

// TestDelayPathAllocatesNothing: send, lookup and record per packet.
func TestDelayPathAllocatesNothing(t *testing.T) {
	var m delayMatcher
	m.measuring.Store(true)
	log := m.newLog("room", nil)
	td := trackDelay{m: &m, log: log, video: true}
	p := vp8Packets(randomFrame(rand.New(rand.NewPCG(5, 6)), 1000), 1)[0]
	var rec delayRecord
	allocs := testing.AllocsPerRun(1000, func() {
		log.sentVideo(p)
		now := time.Now()
		sent, measured, found := td.lookup(p, now)
		if measured {
			rec.record(true, found, time.Duration(clockAt(now)-sent))
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per packet", allocs)
	}
	if rec.matched == 0 {
		t.Error("nothing matched")
	}
}

func TestHistogramPercentiles(t *testing.T) {
	var h latencyHist
	if p := h.millis(); p != (Percentiles{}) {
		t.Errorf("empty: %+v", p)
	}
	// 1..10000 µs, one each: p50 5 ms, p95 9.5 ms, p99 9.9 ms.
	for us := 1; us <= 10000; us++ {
		h.add(time.Duration(us) * time.Microsecond)
	}
	p := h.millis()
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", p.P50, 5}, {"p95", p.P95, 9.5}, {"p99", p.P99, 9.9}, {"max", p.Max, 10}} {
		if c.got < c.want*0.97 || c.got > c.want*1.03 {
			t.Errorf("%s = %.3f ms, want %.1f within 3 %%", c.name, c.got, c.want)
		}
	}
	var sum latencyHist
	sum.merge(&h)
	sum.merge(&h)
	sum.add(90 * time.Second) // past the last bucket
	if sum.total != 20001 || sum.millis().P50 != p.P50 || sum.max != 90*time.Second {
		t.Errorf("merged: %d samples, p50 %.3f, max %v", sum.total, sum.millis().P50, sum.max)
	}
	for i := range histBuckets - 1 {
		if histIndex(histValue(i)) != i || histValue(i+1) <= histValue(i) {
			t.Fatalf("bucket %d: middle %v lands in %d", i, histValue(i), histIndex(histValue(i)))
		}
	}
}
