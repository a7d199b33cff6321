package sfu

import "testing"

func TestRewriterFirstSegmentKeepsNumbering(t *testing.T) {
	r := rewriter{clockRate: 90000}
	r.startSegment(100, 5000, 0)
	for i := uint16(0); i < 5; i++ {
		seq, ts, ok := r.rewrite(100+i, 5000+uint32(i)*3000, int64(i)*33e6)
		if !ok || seq != 100+i || ts != 5000+uint32(i)*3000 {
			t.Fatalf("packet %d: got seq %d ts %d ok %v", i, seq, ts, ok)
		}
	}
}

func TestRewriterSwitchIsContiguous(t *testing.T) {
	tests := []struct {
		name           string
		firstSeq       uint16
		firstTS        uint32
		switchSeq      uint16
		switchTS       uint32
		gapNanos       int64
		wantTSAdvanceG uint32 // at least
	}{
		{"plain", 1000, 90000, 50000, 7, 100e6, 9000},
		{"seq wraps in first segment", 65530, 1, 20, 1 << 31, 33e6, 2970},
		{"ts wraps", 10, 0xffffff00, 30000, 0xfffffff0, 1e9, 90000},
		{"zero gap still advances", 1, 1, 2, 2, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rewriter{clockRate: 90000}
			r.startSegment(tc.firstSeq, tc.firstTS, 0)
			var lastSeq uint16
			var lastTS uint32
			for i := uint16(0); i < 10; i++ {
				seq, ts, ok := r.rewrite(tc.firstSeq+i, tc.firstTS+uint32(i)*3000, int64(i)*33e6)
				if !ok {
					t.Fatal("packet of first segment rejected")
				}
				lastSeq, lastTS = seq, ts
			}
			now := int64(9)*33e6 + tc.gapNanos
			r.startSegment(tc.switchSeq, tc.switchTS, now)
			seq, ts, ok := r.rewrite(tc.switchSeq, tc.switchTS, now)
			if !ok {
				t.Fatal("first packet of new segment rejected")
			}
			if seq != lastSeq+1 {
				t.Fatalf("seq after switch %d, want %d", seq, lastSeq+1)
			}
			if adv := ts - lastTS; adv < tc.wantTSAdvanceG || adv > 1<<30 {
				t.Fatalf("timestamp advanced by %d, want >= %d", adv, tc.wantTSAdvanceG)
			}
			// A late packet of the old layer is dropped, not sent out of place.
			if _, _, ok := r.rewrite(tc.switchSeq-1, tc.switchTS, now); ok {
				t.Fatal("packet from before the switch was accepted")
			}
			// Packets of the new segment keep counting.
			seq2, _, _ := r.rewrite(tc.switchSeq+1, tc.switchTS+3000, now+33e6)
			if seq2 != seq+1 {
				t.Fatalf("second packet seq %d want %d", seq2, seq+1)
			}
		})
	}
}

func TestRewriterReorderedAndRetransmittedPackets(t *testing.T) {
	r := rewriter{clockRate: 48000}
	r.startSegment(10, 0, 0)
	r.rewrite(10, 0, 0)
	r.rewrite(12, 1920, 0)
	seq, ts, ok := r.rewrite(11, 960, 0) // late, same segment: keeps its place
	if !ok || seq != 11 || ts != 960 {
		t.Fatalf("reordered packet: %d %d %v", seq, ts, ok)
	}
	if r.lastSeq != 12 {
		t.Fatalf("late packet moved lastSeq to %d", r.lastSeq)
	}
}

func TestRewriterLongSegmentSurvivesWraparound(t *testing.T) {
	r := rewriter{clockRate: 90000}
	r.startSegment(0, 0, 0)
	for i := 0; i < 200000; i++ {
		seq := uint16(i)
		if _, _, ok := r.rewrite(seq, uint32(i)*30, int64(i)); !ok {
			t.Fatalf("packet %d rejected after %d packets", seq, i)
		}
	}
}
