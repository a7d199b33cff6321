package vp8

import (
	"bytes"
	"testing"
)

// frame is one packet a source sends: its picture id, TL0PICIDX, key index,
// whether it is a keyframe, and whether it starts a new segment.
type frame struct {
	pid          uint16
	tl0, keyIdx  uint8
	key, segment bool
}

// sent is what the receiver must see for that packet.
type sent struct {
	pid         uint16
	tl0, keyIdx uint8
}

func TestMungerKeepsFieldsContinuous(t *testing.T) {
	tests := []struct {
		name   string
		short  bool // 7-bit picture ids
		frames []frame
		want   []sent
	}{
		{"first segment keeps the source's values", false,
			[]frame{{100, 20, 4, true, true}, {101, 20, 4, false, false}, {102, 21, 4, false, false}},
			[]sent{{100, 20, 4}, {101, 20, 4}, {102, 21, 4}}},
		{"a switch continues after the last sent", false,
			[]frame{{100, 20, 4, true, true}, {101, 21, 4, false, false},
				{5000, 90, 17, true, true}, {5001, 91, 17, false, false}},
			[]sent{{100, 20, 4}, {101, 21, 4}, {102, 22, 5}, {103, 23, 5}}},
		{"picture id wraps at 2^15", false,
			[]frame{{0x7ffe, 1, 1, true, true}, {0x7fff, 2, 1, false, false},
				{10, 50, 1, true, true}, {11, 51, 1, false, false}},
			[]sent{{0x7ffe, 1, 1}, {0x7fff, 2, 1}, {0, 3, 2}, {1, 4, 2}}},
		{"the new layer's own ids wrap at 2^15", false,
			[]frame{{200, 1, 1, true, true}, {0x7fff, 9, 1, true, true}, {0, 10, 1, false, false}},
			[]sent{{200, 1, 1}, {201, 2, 2}, {202, 3, 2}}},
		{"7-bit picture ids wrap at 2^7", true,
			[]frame{{126, 1, 1, true, true}, {127, 1, 1, false, false}, {0, 1, 1, false, false},
				{60, 7, 1, true, true}, {61, 7, 1, false, false}},
			[]sent{{126, 1, 1}, {127, 1, 1}, {0, 1, 1}, {1, 2, 2}, {2, 2, 2}}},
		{"TL0PICIDX wraps at 2^8 and key index at 2^5", false,
			[]frame{{1, 254, 30, true, true}, {2, 255, 31, false, false}, {3, 0, 31, false, false},
				{700, 100, 3, true, true}},
			[]sent{{1, 254, 30}, {2, 255, 31}, {3, 0, 31}, {4, 1, 0}}},
		{"a reordered packet does not move the newest back", false,
			[]frame{{10, 5, 1, true, true}, {12, 6, 1, false, false}, {11, 5, 1, false, false},
				{900, 40, 1, true, true}},
			[]sent{{10, 5, 1}, {12, 6, 1}, {11, 5, 1}, {13, 7, 2}}},
		{"back to the first layer", false,
			[]frame{{100, 20, 4, true, true}, {5000, 90, 17, true, true}, {101, 21, 4, true, true}},
			[]sent{{100, 20, 4}, {101, 21, 5}, {102, 22, 6}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Munger
			for i, f := range tc.frames {
				p := build(desc{pid: int(f.pid), short: tc.short, tl0: int(f.tl0), keyIdx: int(f.keyIdx), start: true, key: f.key})
				d, err := Parse(p)
				if err != nil {
					t.Fatal(err)
				}
				if f.segment {
					m.StartSegment(&d)
				}
				if m.NeedsRewrite() {
					m.Rewrite(p, &d)
				}
				m.Sent(&d)
				got, _ := Parse(p)
				w := tc.want[i]
				if got.PictureID != w.pid || got.TL0PICIDX != w.tl0 || got.KeyIdx != w.keyIdx {
					t.Fatalf("packet %d: sent pid %d tl0 %d keyidx %d, want %d %d %d",
						i, got.PictureID, got.TL0PICIDX, got.KeyIdx, w.pid, w.tl0, w.keyIdx)
				}
				if got.PictureID15 == tc.short || got.Keyframe != f.key || got.HeaderLen != d.HeaderLen {
					t.Fatalf("packet %d: rewriting changed the descriptor's shape: %+v", i, got)
				}
			}
		})
	}
}

// Rewriting touches only the three fields: the TID/Y bits sharing the key
// index's byte and the payload stay as they were.
func TestRewriteChangesOnlyItsFields(t *testing.T) {
	p := build(desc{pid: 300, tl0: 9, keyIdx: 2, tid: true, start: true, key: true, w: 640, h: 360})
	orig := bytes.Clone(p)
	d, _ := Parse(p)
	Offsets{PictureID: 5, TL0PICIDX: 1, KeyIdx: 1}.Apply(p, &d)
	got, _ := Parse(p)
	if got.PictureID != 305 || got.TL0PICIDX != 10 || got.KeyIdx != 3 {
		t.Fatalf("fields: %+v", got)
	}
	if p[5]&0xe0 != orig[5]&0xe0 {
		t.Fatalf("TID/Y bits changed: %08b -> %08b", orig[5], p[5])
	}
	if !bytes.Equal(p[d.HeaderLen:], orig[d.HeaderLen:]) || p[0] != orig[0] || p[1] != orig[1] {
		t.Fatal("bytes outside the rewritten fields changed")
	}
}

// A retransmission is rewritten with the offsets recorded when the packet
// was first sent, whatever segment the munger is in by then.
func TestRecordedOffsetsRewriteRetransmissions(t *testing.T) {
	var m Munger
	first, _ := Parse(full(100, 20, 4, true))
	m.StartSegment(&first)
	m.Sent(&first)
	sw, _ := Parse(full(5000, 90, 17, true))
	m.StartSegment(&sw)
	off := m.Offsets()
	p := full(5001, 91, 17, false)
	d, _ := Parse(p)
	m.Rewrite(p, &d)
	m.Sent(&d)
	sentBytes := bytes.Clone(p)
	m.StartSegment(&first) // the stream moves on
	again := full(5001, 91, 17, false)
	d2, _ := Parse(again)
	off.Apply(again, &d2)
	if !bytes.Equal(again, sentBytes) {
		t.Fatalf("retransmission %x differs from the original %x", again, sentBytes)
	}
	if (Offsets{}).IsZero() != true || off.IsZero() {
		t.Fatal("IsZero")
	}
}

func TestMungerLeavesAbsentFieldsAlone(t *testing.T) {
	var m Munger
	a, _ := Parse(full(100, 20, 4, true))
	m.StartSegment(&a)
	m.Sent(&a)
	p := build(desc{pid: -1, tl0: -1, keyIdx: -1, start: true, key: true, w: 320, h: 180})
	orig := bytes.Clone(p)
	d, _ := Parse(p)
	m.StartSegment(&d)
	m.Rewrite(p, &d)
	m.Sent(&d)
	if !bytes.Equal(p, orig) {
		t.Fatalf("descriptor without the fields changed: %x -> %x", orig, p)
	}
}

func BenchmarkMungerRewrite(b *testing.B) {
	var m Munger
	a, _ := Parse(full(100, 20, 4, true))
	m.StartSegment(&a)
	m.Sent(&a)
	sw, _ := Parse(full(5000, 90, 17, true))
	m.StartSegment(&sw)
	p := full(5001, 91, 17, false)
	buf := make([]byte, len(p))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		copy(buf, p)
		d, _ := Parse(buf)
		m.Rewrite(buf, &d)
		m.Sent(&d)
	}
}
