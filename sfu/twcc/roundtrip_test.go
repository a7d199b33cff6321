package twcc

import (
	"math/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/bwe"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// TestRoundTripWithPionRecorder sends packets through a lossy, reordering
// path to pion's TWCC receiver (the Recorder that builds feedback from
// arrivals, as a real receiver does), carries its feedback over the wire
// format, and checks that the results tell each packet's fate and arrival
// time. The run crosses the 16-bit sequence wrap, the 24-bit reference
// time wrap and a feedback gap of 9 s (beyond one report's delta range).
func TestRoundTripWithPionRecorder(t *testing.T) {
	const (
		packets = 70_000
		perFB   = 100 // packets between two feedback reports
	)
	h := newHistory(t, DefaultSize)
	h.next = 60_000 // reach the sequence wrap early
	rec := twcc.NewRecorder(1)
	rng := rand.New(rand.NewSource(7))
	// Receiver's clock (µs), starting 10 s before the reference time wraps.
	clock := int64(refWrap*64_000 - 10_000_000)
	arrivedAt := map[int64]int64{} // unwrapped seq -> arrival µs
	fate := map[int64]bool{}       // unwrapped seq -> received, as the results tell it
	var held []uint16              // a packet held back to arrive after the next one
	var heldSeq []int64
	out := make([]bwe.Packet, 0, 512)
	deliver := func(seq16 uint16, seq int64) {
		rec.Record(1, seq16, clock)
		arrivedAt[seq] = clock
	}
	for k := range packets {
		seq := h.next
		seq16 := h.Stamp(1200, false, int64(k)*1000)
		clock += 500 + rng.Int63n(3000)
		if k == packets/2 {
			clock += 9_000_000 // the path stalls for 9 s
		}
		switch r := rng.Intn(100); {
		case r < 5: // lost
		case r < 8: // reordered: arrives after the next packet
			held, heldSeq = append(held, seq16), append(heldSeq, seq)
			continue
		default:
			deliver(seq16, seq)
		}
		for i := range held {
			clock += 100
			deliver(held[i], heldSeq[i])
		}
		held, heldSeq = held[:0], heldSeq[:0]
		if (k+1)%perFB == 0 {
			for _, p := range rec.BuildFeedbackPacket() {
				fb := overTheWire(t, p)
				var err error
				out, _, err = h.Feedback(fb, out)
				if err != nil {
					t.Fatalf("feedback after packet %d: %v", k, err)
				}
				for _, r := range out {
					fate[r.Seq] = !r.Lost
					if r.Lost {
						continue
					}
					want := arrivedAt[r.Seq] * 1000
					if d := r.Arrival - want; d < -125_000 || d > 125_000 {
						t.Fatalf("packet %d arrived at %d ns, results say %d", r.Seq, want, r.Arrival)
					}
				}
			}
		}
	}
	// Every packet up to the last report has the fate it really had.
	checked := 0
	for seq := int64(60_000); seq < h.next-perFB; seq++ {
		_, arrived := arrivedAt[seq]
		got, told := fate[seq]
		if !told {
			t.Fatalf("packet %d (arrived %v) was never reported", seq, arrived)
		}
		if got != arrived {
			t.Fatalf("packet %d: results say received=%v, it was %v", seq, got, arrived)
		}
		checked++
	}
	t.Logf("%d packets checked, %d arrived", checked, len(arrivedAt))
}

// overTheWire marshals a feedback packet and parses it back, as it travels.
func overTheWire(t *testing.T, p rtcp.Packet) *rtcp.TransportLayerCC {
	t.Helper()
	raw, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var fb rtcp.TransportLayerCC
	if err := fb.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	return &fb
}

// TestConcurrentStampAndFeedback runs the writer and the reader on two
// goroutines (run it with -race) while the writer laps a small ring: every
// result the reader gets must carry the departure and size stamped for its
// own number, never those of a newer packet that took its slot.
func TestConcurrentStampAndFeedback(t *testing.T) {
	h := newHistory(t, 64) // small, so the writer laps the reader often
	const reads = 5000
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := int64(0); k < 1e9 && !stop.Load(); k++ {
			h.Stamp(int(k%1500), false, k*7)
		}
	}()
	out := make([]bwe.Packet, 0, 32)
	bad, results := 0, 0
	for deadline := time.Now().Add(5 * time.Second); h.Sent() < 64; {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not start")
		}
		runtime.Gosched()
	}
	for range reads {
		// Old numbers in the small ring: the writer is about to overwrite
		// them, so reads race with writes.
		out, _, _ = h.Feedback(received(uint16(h.Sent()-48), 32, 0), out)
		for _, r := range out {
			results++
			if r.Sent != r.Seq*7 || r.Size != int(r.Seq%1500) {
				bad++
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad > 0 || results == 0 {
		t.Fatalf("%d of %d results were torn", bad, results)
	}
	t.Logf("%d results read while the writer ran", results)
}
