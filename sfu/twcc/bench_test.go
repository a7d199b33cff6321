package twcc

import (
	"testing"

	"github.com/confab-sfu/confab/sfu/bwe"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// BenchmarkStamp is the per-packet cost on the send path.
func BenchmarkStamp(b *testing.B) {
	h := newHistory(b, DefaultSize)
	b.ReportAllocs()
	for i := range b.N {
		h.Stamp(1200, false, int64(i))
	}
}

// BenchmarkFeedback is the cost of feedback per packet it reports: pion's
// Recorder builds reports of 100 packets (a few lost) for a full ring of
// 32768; each report covers packets not reported before, all still held.
func BenchmarkFeedback(b *testing.B) {
	const perFB = 100
	h := newHistory(b, MaxSize)
	rec := twcc.NewRecorder(1)
	var reports []*rtcp.TransportLayerCC
	for k := range MaxSize {
		seq := h.Stamp(1200, false, int64(k)*1000)
		if k%37 != 0 {
			rec.Record(1, seq, int64(k)*1100)
		}
		if (k+1)%perFB == 0 {
			for _, p := range rec.BuildFeedbackPacket() {
				reports = append(reports, p.(*rtcp.TransportLayerCC))
			}
		}
	}
	out := make([]bwe.Packet, 0, 2*perFB)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := range b.N {
		fb := reports[i%len(reports)]
		if i%len(reports) == 0 {
			clear(h.seen) // start over: the reports are new again
		}
		out, _, _ = h.Feedback(fb, out)
		n += int(fb.PacketStatusCount)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/packet")
}
