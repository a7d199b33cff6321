package twcc

import (
	"errors"
	"testing"

	"github.com/confab-sfu/confab/sfu/bwe"
	"github.com/pion/rtcp"
)

func newHistory(t testing.TB, size int) *History {
	t.Helper()
	h, err := NewHistory(size)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// stampN sends n packets: packet k (counting from the first ever) leaves
// at k ms and is 1000+k%100 bytes; every 10th is padding.
func stampN(h *History, n int) {
	for range n {
		k := h.next
		h.Stamp(1000+int(k%100), k%10 == 9, k*1_000_000)
	}
}

func runLength(symbol, n uint16) *rtcp.RunLengthChunk {
	return &rtcp.RunLengthChunk{Type: rtcp.TypeTCCRunLengthChunk, PacketStatusSymbol: symbol, RunLength: n}
}

func vector(size uint16, symbols ...uint16) *rtcp.StatusVectorChunk {
	return &rtcp.StatusVectorChunk{Type: rtcp.TypeTCCStatusVectorChunk, SymbolSize: size, SymbolList: symbols}
}

func deltas(us ...int64) []*rtcp.RecvDelta {
	out := make([]*rtcp.RecvDelta, len(us))
	for i, d := range us {
		typ := rtcp.TypeTCCPacketReceivedSmallDelta
		if d < 0 || d > 255*rtcp.TypeTCCDeltaScaleFactor {
			typ = rtcp.TypeTCCPacketReceivedLargeDelta
		}
		out[i] = &rtcp.RecvDelta{Type: typ, Delta: d}
	}
	return out
}

func TestNewHistoryRefusesBadSizes(t *testing.T) {
	for _, n := range []int{0, -16, 8, 100, 1 << 16} {
		if _, err := NewHistory(n); !errors.Is(err, ErrSize) {
			t.Errorf("size %d: %v, want ErrSize", n, err)
		}
	}
	for _, n := range []int{MinSize, DefaultSize, MaxSize} {
		if _, err := NewHistory(n); err != nil {
			t.Errorf("size %d: %v", n, err)
		}
	}
}

func TestStampNumbersWrapAt16Bits(t *testing.T) {
	h := newHistory(t, 64)
	h.next = 65534
	var got []uint16
	for range 4 {
		got = append(got, h.Stamp(1200, false, 0))
	}
	if want := []uint16{65534, 65535, 0, 1}; !equal(got, want) {
		t.Fatalf("numbers %v, want %v", got, want)
	}
	if h.Sent() != 65538 {
		t.Fatalf("Sent %d, want 65538", h.Sent())
	}
}

func equal(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFeedbackChunks(t *testing.T) {
	h := newHistory(t, 64)
	stampN(h, 20)
	// Packets 2..15: a run of 3 received, a 2-bit vector with a large and a
	// negative (reordered) delta and losses, then a 1-bit vector of which
	// the count (14) takes only the first 4 symbols.
	fb := &rtcp.TransportLayerCC{
		BaseSequenceNumber: 2, PacketStatusCount: 14, ReferenceTime: 10,
		PacketChunks: []rtcp.PacketStatusChunk{
			runLength(rtcp.TypeTCCPacketReceivedSmallDelta, 3),
			vector(rtcp.TypeTCCSymbolSizeTwoBit, 2, 2, 0, 1, 0, 0, 1),
			vector(rtcp.TypeTCCSymbolSizeOneBit, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
		},
		RecvDeltas: deltas(1000, 1000, 1000, 100_000, -500, 750, 250, 2000, 250, 0),
	}
	out, c, err := h.Feedback(fb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != (Counts{Received: 10, Lost: 4}) {
		t.Fatalf("counts %+v", c)
	}
	base := int64(10 * 64_000)
	want := []struct {
		seq     int64
		lost    bool
		arrival int64 // µs
	}{
		{2, false, base + 1000}, {3, false, base + 2000}, {4, false, base + 3000},
		{5, false, base + 103_000}, {6, false, base + 102_500}, {7, true, 0},
		{8, false, base + 103_250}, {9, true, 0}, {10, true, 0}, {11, false, base + 103_500},
		{12, false, base + 105_500}, {13, true, 0}, {14, false, base + 105_750}, {15, false, base + 105_750},
	}
	if len(out) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(out), len(want), out)
	}
	for i, w := range want {
		r := out[i]
		if r.Seq != w.seq || r.Lost != w.lost || (!w.lost && r.Arrival != w.arrival*1000) {
			t.Errorf("result %d: %+v, want seq %d lost %v arrival %d µs", i, r, w.seq, w.lost, w.arrival)
		}
		if r.Sent != r.Seq*1_000_000 || r.Size != 1000+int(r.Seq%100) || r.Padding != (r.Seq%10 == 9) {
			t.Errorf("result %d: departure/size/padding %+v do not match what was stamped", i, r)
		}
	}
}

// received reports n packets from base, all received 1 ms apart.
func received(base uint16, n int, ref uint32) *rtcp.TransportLayerCC {
	us := make([]int64, n)
	for i := range us {
		us[i] = 1000
	}
	return &rtcp.TransportLayerCC{
		BaseSequenceNumber: base, PacketStatusCount: uint16(n), ReferenceTime: ref,
		PacketChunks: []rtcp.PacketStatusChunk{runLength(rtcp.TypeTCCPacketReceivedSmallDelta, uint16(n))},
		RecvDeltas:   deltas(us...),
	}
}

func TestFeedbackAcrossTheSequenceWrap(t *testing.T) {
	h := newHistory(t, 64)
	h.next = 65530
	stampN(h, 20) // 65530 .. 65549: the numbers on the wire wrap after 65535
	out, c, err := h.Feedback(received(65532, 10, 1), nil)
	if err != nil || c.Received != 10 {
		t.Fatalf("counts %+v, %v", c, err)
	}
	for i, r := range out {
		if want := int64(65532 + i); r.Seq != want || r.Sent != want*1_000_000 {
			t.Errorf("result %d: seq %d sent %d, want seq %d", i, r.Seq, r.Sent, want)
		}
	}
}

func TestRepeatedAndReorderedFeedback(t *testing.T) {
	h := newHistory(t, 64)
	stampN(h, 10)
	lostThird := &rtcp.TransportLayerCC{
		BaseSequenceNumber: 0, PacketStatusCount: 4,
		PacketChunks: []rtcp.PacketStatusChunk{vector(rtcp.TypeTCCSymbolSizeTwoBit, 1, 1, 0, 1)},
		RecvDeltas:   deltas(1000, 1000, 2000),
	}
	out := make([]bwe.Packet, 0, 16)
	out, c, _ := h.Feedback(lostThird, out)
	if c != (Counts{Received: 3, Lost: 1}) || len(out) != 4 {
		t.Fatalf("first report: %+v", c)
	}
	// The same report again (a receiver resends after reordering): nothing new.
	out, c, _ = h.Feedback(lostThird, out)
	if c != (Counts{Duplicates: 4}) || len(out) != 0 {
		t.Fatalf("repeated report: %+v, %d results", c, len(out))
	}
	// Packet 2 arrived late after all: it comes back received and Late,
	// the others are duplicates.
	out, c, _ = h.Feedback(received(0, 4, 0), out)
	if c != (Counts{Received: 1, Duplicates: 3}) || len(out) != 1 || out[0].Seq != 2 || !out[0].Late || out[0].Lost {
		t.Fatalf("late arrival: %+v, %+v", c, out)
	}
	// A later report calling a received packet lost does not undo it.
	_, c, _ = h.Feedback(&rtcp.TransportLayerCC{
		BaseSequenceNumber: 1, PacketStatusCount: 1,
		PacketChunks: []rtcp.PacketStatusChunk{runLength(rtcp.TypeTCCPacketNotReceived, 1)},
	}, out)
	if c != (Counts{Duplicates: 1}) {
		t.Fatalf("received then lost: %+v", c)
	}
}

func TestFeedbackForPacketsTooOldOrNeverSent(t *testing.T) {
	h := newHistory(t, 16)
	stampN(h, 40) // the ring holds 24..39
	out, c, err := h.Feedback(received(20, 10, 0), nil)
	if err != nil || c != (Counts{Received: 6, TooOld: 4}) || out[0].Seq != 24 {
		t.Fatalf("counts %+v, %v", c, err)
	}
	// 40 and beyond were never sent.
	_, c, _ = h.Feedback(received(38, 5, 0), nil)
	if c != (Counts{Received: 2, Unsent: 3}) {
		t.Fatalf("counts %+v", c)
	}
	// Nothing sent at all.
	_, c, _ = newHistory(t, 16).Feedback(received(0, 3, 0), nil)
	if c != (Counts{Unsent: 3}) {
		t.Fatalf("empty history: %+v", c)
	}
}

func TestReferenceTimeWrap(t *testing.T) {
	h := newHistory(t, 64)
	stampN(h, 10)
	// The 24-bit reference time (64 ms units) wraps between two reports:
	// arrivals stay continuous.
	first, _, _ := h.Feedback(received(0, 2, refWrap-1), nil)
	a := first[1].Arrival
	second, _, _ := h.Feedback(received(2, 2, 0), nil)
	if d := second[0].Arrival - a; d != 64_000_000+1_000_000-2_000_000 {
		t.Fatalf("arrival advanced by %d ns across the wrap, want 63 ms", d)
	}
	// A report from before the wrap, arriving late, is still placed before.
	third, _, _ := h.Feedback(received(4, 1, refWrap-2), nil)
	if third[0].Arrival >= a {
		t.Fatalf("a reordered report's arrival %d is not before %d", third[0].Arrival, a)
	}
}

func TestMalformedFeedbackKeepsWhatWasRead(t *testing.T) {
	h := newHistory(t, 64)
	stampN(h, 10)
	short := received(0, 5, 0)
	short.RecvDeltas = short.RecvDeltas[:3]
	out, c, err := h.Feedback(short, nil)
	if !errors.Is(err, ErrMalformed) || len(out) != 3 || c.Received != 3 {
		t.Fatalf("deltas missing: %v, %d results", err, len(out))
	}
	reserved := &rtcp.TransportLayerCC{
		BaseSequenceNumber: 5, PacketStatusCount: 2,
		PacketChunks: []rtcp.PacketStatusChunk{vector(rtcp.TypeTCCSymbolSizeTwoBit, 1, 3)},
		RecvDeltas:   deltas(1000),
	}
	out, _, err = h.Feedback(reserved, nil)
	if !errors.Is(err, ErrMalformed) || len(out) != 1 || out[0].Seq != 5 {
		t.Fatalf("reserved symbol: %v, %+v", err, out)
	}
	// The history still works.
	if _, c, err := h.Feedback(received(6, 2, 0), nil); err != nil || c.Received != 2 {
		t.Fatalf("after malformed feedback: %+v, %v", c, err)
	}
}

func TestNoAllocation(t *testing.T) {
	h := newHistory(t, 1024)
	if n := testing.AllocsPerRun(1000, func() { h.Stamp(1200, false, 1) }); n != 0 {
		t.Errorf("Stamp allocates %.1f times", n)
	}
	fb := received(0, 100, 0)
	out := make([]bwe.Packet, 0, 100)
	if n := testing.AllocsPerRun(100, func() { out, _, _ = h.Feedback(fb, out) }); n != 0 {
		t.Errorf("Feedback allocates %.1f times", n)
	}
}
