package loadtest

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
go_goroutines 42
confab_packets_out_total{kind="video"} 100
confab_packets_out_total{kind="audio",note="a b}"} 50 1700000000000
process_resident_memory_bytes 1.2345e+08
broken_line
`
	m := parseMetrics(text)
	want := map[string]float64{"process_cpu_seconds_total": 12.5, "go_goroutines": 42, "confab_packets_out_total": 150, "process_resident_memory_bytes": 1.2345e8}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if _, ok := m["broken_line"]; ok {
		t.Error("a line without a value was read")
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

// vp8First packetizes one frame of a clip and returns its first packet.
func vp8First(t *testing.T, frame []byte) []byte {
	t.Helper()
	p := (&codecs.VP8Payloader{EnablePictureID: true}).Payload(1200, frame)
	if len(p) == 0 {
		t.Fatal("no payload")
	}
	return p[0]
}

func TestVP8KeyframeWidthOfClips(t *testing.T) {
	video, _, err := loadClips()
	if err != nil {
		t.Fatal(err)
	}
	for l, want := range []uint16{320, 640, 1280} {
		if got := vp8KeyframeWidth(vp8First(t, video[l][0].data)); got != want {
			t.Errorf("layer %d keyframe: width %d, want %d", l, got, want)
		}
		if got := vp8KeyframeWidth(vp8First(t, video[l][1].data)); got != 0 {
			t.Errorf("layer %d delta frame read as a keyframe of width %d", l, got)
		}
		if got := layerOfWidth(want); got != []string{"low", "medium", "high"}[l] {
			t.Errorf("width %d named %q", want, got)
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
	if st.Packets != 2 || st.Padding != 1 || st.BitrateKbps != 8 {
		t.Errorf("%+v: want 2 packets, 1 of them padding, 8 kbit/s of media", st)
	}
}
