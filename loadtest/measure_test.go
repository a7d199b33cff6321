package loadtest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/vp8"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
go_goroutines 42
confab_packets_out_total{kind="video"} 100
confab_packets_out_total{kind="audio",note="a b}"} 50 1700000000000
process_resident_memory_bytes 1.2345e+08
# TYPE rtt_seconds histogram
rtt_seconds_bucket{le="+Inf"} 3
rtt_seconds_sum 0.3
rtt_seconds_count 3
`
	m, err := parseMetrics(strings.NewReader(text), expfmt.FmtUnknown)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"process_cpu_seconds_total": 12.5, "go_goroutines": 42, "confab_packets_out_total": 150, "process_resident_memory_bytes": 1.2345e8}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("read %v, want only the counters and gauges %v", m, want)
	}
	if _, err := parseMetrics(strings.NewReader(text+"broken_line\n"), expfmt.FmtUnknown); err == nil {
		t.Error("a line without a value was accepted")
	}
}

// TestScrapeServer reads a real registry's /metrics, as text and in the
// protobuf format, and a server without metrics.
func TestScrapeServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	out := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "confab_packets_out_total"}, []string{"kind"})
	cpu := prometheus.NewGauge(prometheus.GaugeOpts{Name: "process_cpu_seconds_total"})
	reg.MustRegister(out, cpu)
	out.WithLabelValues("audio").Add(50)
	out.WithLabelValues("video").Add(100)
	cpu.Set(2.5)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, format := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeProtoDelim)} {
		var buf bytes.Buffer
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		enc := expfmt.NewEncoder(&buf, format)
		for _, f := range fams {
			if err := enc.Encode(f); err != nil {
				t.Fatal(err)
			}
		}
		m, err := parseMetrics(&buf, format)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if m["confab_packets_out_total"] != 150 || m["process_cpu_seconds_total"] != 2.5 {
			t.Errorf("%s: %v", format, m)
		}
	}
	s := scrapeServer(context.Background(), srv.URL)
	if !s.Available || s.PacketsOut != 150 || s.CPUSeconds != 2.5 {
		t.Errorf("scraped %+v", s)
	}
	if s := scrapeServer(context.Background(), srv.URL+"/nothing-here"); s.Available {
		t.Errorf("a 404 scraped as %+v", s)
	}
}

// The relay's series are summed over the other nodes, per direction.
func TestParseRelayMetrics(t *testing.T) {
	text := `confab_relay_packets_total{direction="out",node="n2"} 100
confab_relay_packets_total{direction="out",node="n3"} 120
confab_relay_packets_total{direction="in",node="n2"} 7
confab_relay_bytes_total{direction="out",node="n2"} 1000
confab_relay_bytes_total{direction="in",node="n3"} 70
process_cpu_seconds_total 3
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(text)) }))
	defer srv.Close()
	s := scrapeServer(context.Background(), srv.URL)
	want := RelayTraffic{PacketsOut: 220, PacketsIn: 7, BytesOut: 1000, BytesIn: 70}
	if !s.Available || s.Relay != want {
		t.Errorf("relay %+v, want %+v", s.Relay, want)
	}
	later := s
	later.at = s.at.Add(10 * time.Second)
	later.Relay = RelayTraffic{PacketsOut: 320, PacketsIn: 17, BytesOut: 2000, BytesIn: 170}
	if d := later.since(s); d.Relay != (RelayTraffic{100, 10, 1000, 100}) || d.Seconds != 10 {
		t.Errorf("relay over the run %+v in %.1f s", d.Relay, d.Seconds)
	}
	if sum := sumServers([]ServerStats{s, later, {}}).Relay; sum != (RelayTraffic{540, 24, 3000, 240}) {
		t.Errorf("relay of two nodes and one that did not answer: %+v", sum)
	}
}

func TestServerStatsSince(t *testing.T) {
	before := ServerStats{Available: true, CPUSeconds: 10, PacketsOut: 1000, BytesOut: 1e6, RSSBytes: 100 << 20}
	after := ServerStats{Available: true, CPUSeconds: 13, PacketsOut: 31000, BytesOut: 4e6, RSSBytes: 130 << 20, Goroutines: 77}
	d := after.since(before)
	if d.CPUSeconds != 3 || d.PacketsOut != 30000 || d.BytesOut != 3e6 || d.CPUPer1000 != 0.1 {
		t.Errorf("counters: %+v", d)
	}
	if d.RSSBytes != 130<<20 || d.RSSGrowth != 30<<20 || d.Goroutines != 77 {
		t.Errorf("gauges: %+v", d)
	}
	if got := (ServerStats{}).since(before); got.Available || got.CPUPer1000 != 0 {
		t.Errorf("a failed scrape gave %+v", got)
	}
}

// vp8Keyframe is the start of a VP8 keyframe of the given width (and
// height 180): frame tag, start code, sizes with scaling bits set.
func vp8Keyframe(width uint16) []byte {
	w := width | 0x4000 // horizontal scale: not part of the width
	return []byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, byte(w), byte(w >> 8), 180, 0x80, 0, 0, 0, 0}
}

func TestVP8KeyframeWidth(t *testing.T) {
	payload := func(p *codecs.VP8Payloader, frame []byte) []byte { return p.Payload(1200, frame)[0] }
	for _, c := range []struct {
		name  string
		p     []byte
		width uint16
	}{
		{"7-bit picture id", payload(&codecs.VP8Payloader{EnablePictureID: true}, vp8Keyframe(320)), 320},
		{"15-bit picture id", append([]byte{0x90, 0x80, 0x80 | 0x12, 0x34}, vp8Keyframe(640)...), 640},
		{"no descriptor extension", payload(&codecs.VP8Payloader{}, vp8Keyframe(1280)), 1280},
		{"tl0picidx and tid", append([]byte{0x90, 0xe0, 0x05, 0x07, 0x40}, vp8Keyframe(320)...), 320},
		{"delta frame", payload(&codecs.VP8Payloader{}, append([]byte{0x51}, vp8Keyframe(320)[1:]...)), 0},
		{"not a frame start", append([]byte{0x00}, vp8Keyframe(320)...), 0},
		{"truncated", payload(&codecs.VP8Payloader{}, vp8Keyframe(320))[:8], 0},
		{"empty", nil, 0},
	} {
		if got, _ := vp8.KeyframeSize(c.p); got != int(c.width) {
			t.Errorf("%s: width %d, want %d", c.name, got, c.width)
		}
	}
	for w, want := range map[uint16]string{0: "unknown", 320: "low", 640: "medium", 1280: "high"} {
		if got := layerOfWidth(w); got != want {
			t.Errorf("width %d named %q, want %q", w, got, want)
		}
	}
}

func TestFreezes(t *testing.T) {
	tl := trackLog{video: true}
	at := time.Unix(0, 0)
	seq, ts := uint16(1), uint32(0)
	frame := func(gap time.Duration) {
		at = at.Add(gap)
		ts += 3000
		tl.add(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts}, Payload: []byte{0x10, 1}}, 100, at)
		seq++
	}
	for range 30 {
		frame(33 * time.Millisecond)
	}
	frame(499 * time.Millisecond) // a stall, but not a freeze
	frame(600 * time.Millisecond) // a freeze
	frame(33 * time.Millisecond)
	frame(2 * time.Second) // another
	if tl.freezes != 2 {
		t.Errorf("%d freezes, want 2", tl.freezes)
	}
}

func TestLossIsJudgedASecondLater(t *testing.T) {
	r := newReceiveLog("x", 1)
	tl := &trackLog{}
	r.tracks["t"] = tl
	add := func(seq uint16) {
		r.mu.Lock()
		tl.add(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq}}, 100, time.Now())
		r.mu.Unlock()
	}
	for _, s := range []uint16{1, 2, 4, 5} {
		add(s)
	}
	r.settle() // 3 is missing, but may still be repaired
	if _, lost := r.totals(); lost != 0 {
		t.Fatalf("a fresh gap counted as lost: %d", lost)
	}
	add(6)
	r.settle() // a second later 3 is still missing
	if _, lost := r.totals(); lost != 1 {
		t.Fatalf("lost %d, want 1", lost)
	}
	add(3) // repaired very late: it arrived after all
	if p, lost := r.totals(); lost != 0 || p != 6 {
		t.Fatalf("after the repair: %d packets, %d lost", p, lost)
	}
}

func TestPercentiles(t *testing.T) {
	var xs []float64
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	p := percentiles(xs)
	if p.P50 != 51 || p.P95 != 96 || p.P99 != 100 || p.Max != 100 {
		t.Errorf("%+v", p)
	}
	if (percentiles(nil) != Percentiles{}) {
		t.Error("empty input")
	}
}

func TestPaddingIsNotMedia(t *testing.T) {
	r := newReceiveLog("x", 1)
	tl := &trackLog{video: true}
	r.tracks["t"] = tl
	now := time.Now()
	tl.add(&rtp.Packet{Header: rtp.Header{SequenceNumber: 1, Timestamp: 1}, Payload: []byte{0x10, 1, 2}}, 1000, now)
	tl.add(&rtp.Packet{Header: rtp.Header{SequenceNumber: 2, Timestamp: 1, Padding: true}, PaddingSize: 200}, 212, now)
	st := r.stats(1)
	if st.Packets != 2 || st.Padding != 1 || st.MediaPackets != 1 || st.BitrateKbps != 8 {
		t.Errorf("%+v: want 2 packets, 1 of them padding, 8 kbit/s of media", st)
	}
}

func TestLossCountsOnlyUnrepairedGaps(t *testing.T) {
	var tl trackLog
	var now time.Time
	add := func(seq uint16) {
		tl.add(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq}}, 100, now)
	}
	for _, s := range []uint16{65530, 65531, 65533, 65534, 65535, 0, 1, 3, 4} {
		add(s)
	}
	if got := tl.lostUpTo(tl.maxExt); got != 2 {
		t.Fatalf("lost %d, want 2 (65532 and 2)", got)
	}
	add(2)     // a NACK repair, late
	add(65532) // another, from before the wrap
	add(3)     // a duplicate
	if got := tl.lostUpTo(tl.maxExt); got != 0 {
		t.Fatalf("lost %d after repairs, want 0", got)
	}
}
