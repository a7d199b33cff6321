package rewrite

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// op is one step of a table test: start a segment, place a source packet,
// or insert a padding packet; want* are checked for packets and padding.
type op struct {
	kind    byte // 's' start segment, 'p' packet, 'i' insert
	seq     uint16
	ts      uint32
	now     int64 // ns
	wantSeq uint16
	wantTS  uint32
	wantOK  bool
}

func start(seq uint16, ts uint32, now int64) op { return op{kind: 's', seq: seq, ts: ts, now: now} }
func pkt(seq uint16, ts uint32, now int64, wantSeq uint16, wantTS uint32) op {
	return op{kind: 'p', seq: seq, ts: ts, now: now, wantSeq: wantSeq, wantTS: wantTS, wantOK: true}
}
func dropped(seq uint16, ts uint32, now int64) op { return op{kind: 'p', seq: seq, ts: ts, now: now} }
func pad(wantSeq uint16, wantTS uint32) op {
	return op{kind: 'i', wantSeq: wantSeq, wantTS: wantTS, wantOK: true}
}

const ms = int64(1e6)

func TestStream(t *testing.T) {
	tests := []struct {
		name      string
		clockRate uint32
		ops       []op
	}{
		{"nothing before the first segment", 90000, []op{
			dropped(5, 5, 0), {kind: 'i'},
		}},
		{"first segment keeps the source numbering", 90000, []op{
			start(100, 5000, 0), pkt(100, 5000, 0, 100, 5000), pkt(101, 8000, 33*ms, 101, 8000),
		}},
		{"a switch continues numbering and advances time", 90000, []op{
			start(1000, 90000, 0),
			pkt(1000, 90000, 0, 1000, 90000), pkt(1001, 93000, 33*ms, 1001, 93000), pkt(1002, 96000, 66*ms, 1002, 96000),
			start(50000, 7, 166*ms), // 100 ms later: 9000 ticks at 90 kHz
			pkt(50000, 7, 166*ms, 1003, 105000),
			dropped(49999, 4, 166*ms), // a late packet of the old layer
			pkt(50001, 3007, 199*ms, 1004, 108000),
		}},
		{"sequence numbers wrap at 65535 within a segment", 90000, []op{
			start(65534, 0, 0),
			pkt(65534, 0, 0, 65534, 0), pkt(65535, 1, 0, 65535, 1), pkt(0, 2, 0, 0, 2), pkt(1, 3, 0, 1, 3),
		}},
		{"sequence numbers wrap at 65535 across a switch", 48000, []op{
			start(65534, 0, 0), pkt(65534, 0, 0, 65534, 0), pkt(65535, 960, 20*ms, 65535, 960),
			start(300, 77, 40*ms), pkt(300, 77, 40*ms, 0, 1920), pkt(301, 1037, 60*ms, 1, 2880),
		}},
		{"timestamps wrap at 2^32", 90000, []op{
			start(10, 0xffffff00, 0),
			pkt(10, 0xffffff00, 0, 10, 0xffffff00),
			pkt(11, 2744, 33*ms, 11, 2744),    // 0xffffff00 + 3000, wrapped
			start(30000, 0xfffffff0, 1033*ms), // 1 s later: 90000 ticks
			pkt(30000, 0xfffffff0, 1033*ms, 12, 92744),
			pkt(30001, 2984, 1066*ms, 13, 95744), // 0xfffffff0 + 3000: wrapped in the source too
		}},
		{"no time passed: still one tick ahead", 90000, []op{
			start(1, 1, 0), pkt(1, 1, 0, 1, 1), start(2, 2, 0), pkt(2, 2, 0, 2, 2),
		}},
		{"a clock going backwards counts as no time", 90000, []op{
			start(1, 100, 50*ms), pkt(1, 100, 50*ms, 1, 100), start(9, 0, 10*ms), pkt(9, 0, 10*ms, 2, 101),
		}},
		{"reordered packets keep their place", 48000, []op{
			start(10, 0, 0), pkt(10, 0, 0, 10, 0), pkt(12, 1920, 0, 12, 1920), pkt(11, 960, 0, 11, 960), pkt(13, 2880, 0, 13, 2880),
		}},
		{"an older timestamp does not move the newest one back", 90000, []op{
			start(10, 5000, 0), pkt(10, 5000, 0, 10, 5000), pkt(12, 11000, 0, 12, 11000), pkt(11, 8000, 0, 11, 8000),
			start(500, 0, 0), pkt(500, 0, 0, 13, 11001),
		}},
		{"padding takes numbers, media follows it", 90000, []op{
			start(10, 1000, 0), pkt(10, 1000, 0, 10, 1000), pkt(11, 1000, 0, 11, 1000),
			pad(12, 1000), pad(13, 1000),
			pkt(12, 4000, ms, 14, 4000),
			dropped(11, 1000, ms), // from before the padding: its number is taken
			pkt(13, 7000, 2*ms, 15, 7000),
		}},
		{"padding across the 65535 wrap", 90000, []op{
			start(65535, 0, 0), pkt(65535, 0, 0, 65535, 0), pad(0, 0), pad(1, 0), pkt(0, 3000, 0, 2, 3000),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.clockRate)
			for i, o := range tc.ops {
				var seq uint16
				var ts uint32
				var ok bool
				switch o.kind {
				case 's':
					s.StartSegment(o.seq, o.ts, o.now)
					continue
				case 'p':
					seq, ts, ok = s.Rewrite(o.seq, o.ts, o.now)
				case 'i':
					seq, ts, ok = s.Insert()
				}
				if ok != o.wantOK || (ok && (seq != o.wantSeq || ts != o.wantTS)) {
					t.Fatalf("step %d (%c %d/%d): got %d/%d ok=%v, want %d/%d ok=%v",
						i, o.kind, o.seq, o.ts, seq, ts, ok, o.wantSeq, o.wantTS, o.wantOK)
				}
			}
		})
	}
}

func TestSeqNewer(t *testing.T) {
	for _, tc := range []struct {
		a, b uint16
		want bool
	}{
		{1, 0, true}, {0, 1, false}, {5, 5, false},
		{0, 65535, true}, {65535, 0, false},
		{0x7fff, 0, true}, {0x8000, 0, false},
	} {
		if got := SeqNewer(tc.a, tc.b); got != tc.want {
			t.Errorf("SeqNewer(%d, %d) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// A segment far longer than the sequence space keeps accepting its packets,
// including ones slightly reordered around each wrap.
func TestLongSegmentSurvivesManyWraps(t *testing.T) {
	s := New(90000)
	s.StartSegment(0, 0, 0)
	for i := 0; i < 200000; i++ {
		seq := uint16(i)
		got, _, ok := s.Rewrite(seq, uint32(i)*30, int64(i))
		if !ok || got != seq {
			t.Fatalf("packet %d (after %d) placed at %d ok=%v", seq, i, got, ok)
		}
		if i%1000 == 999 {
			if late, _, ok := s.Rewrite(seq-3, 0, int64(i)); !ok || late != seq-3 {
				t.Fatalf("reordered packet %d placed at %d ok=%v", seq-3, late, ok)
			}
		}
	}
}

func BenchmarkRewrite(b *testing.B) {
	s := New(90000)
	s.StartSegment(0, 0, 0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Rewrite(uint16(i), uint32(i)*3000, int64(i))
	}
}
