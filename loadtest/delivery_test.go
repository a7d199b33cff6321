package loadtest

import (
	"testing"
	"time"

	"github.com/confab-sfu/confab/signal"
)

// Pauses for bandwidth and the resumes after them count; a track held back
// before it was first forwarded, a subscriber's own pause and decisions
// that change only the layer do not.
func TestSwitchesCountPausesAndResumes(t *testing.T) {
	r := newReceiveLog("x", 4)
	on := func(id, layer string) signal.LayerDecision {
		return signal.LayerDecision{TrackID: id, Current: layer, Target: layer, Reason: "requested"}
	}
	off := func(id string) signal.LayerDecision {
		return signal.LayerDecision{TrackID: id, Reason: "bandwidth"}
	}
	for _, d := range []signal.LayerDecision{
		off("late"), off("late"), on("late", "high"), // held back at first: no switch
		on("a", "high"), on("a", "low"), off("a"), off("a"), on("a", "low"), off("a"), // 3
		on("b", "high"), {TrackID: "b", Paused: true, Reason: "paused"}, on("b", "high"), // the subscriber's own pause
		off("never"),
	} {
		r.noteDecision(d)
	}
	tracks, switches, most := r.switchCounts()
	if tracks != 3 || switches != 3 || most != 3 {
		t.Errorf("%d tracks forwarded, %d switches, most %d; want 3, 3, 3", tracks, switches, most)
	}
	st := r.stats(1)
	if st.Switches != 3 || st.ForwardedTracks != 3 || st.MaxSwitches != 3 {
		t.Errorf("stats %+v", st)
	}
}

// Full media is the first sample with every track on its layer from which
// on 99 % of the video published arrived, judged over at least 5 s.
func TestFullMediaTime(t *testing.T) {
	join := time.Unix(1000, 0)
	at := func(s float64) time.Time { return join.Add(time.Duration(s * float64(time.Second))) }
	for _, tc := range []struct {
		name    string
		samples []deliverySample
		want    time.Duration // -1: never
	}{
		{"full from 2 s", []deliverySample{
			{at(1), 0, 1000, false},
			{at(2), 500, 2000, true}, // half so far, but all of it from here on
			{at(8), 6500, 8000, true},
		}, 2 * time.Second},
		{"a pause moves it to the resume", []deliverySample{
			{at(1), 1000, 1000, true},
			{at(4), 2000, 4000, true}, // 2 s of 3 missing
			{at(5), 3000, 5000, true},
			{at(11), 9000, 11000, true},
		}, 4 * time.Second},
		{"98 % is not full", []deliverySample{
			{at(1), 0, 0, true},
			{at(11), 9800, 10000, true},
		}, -1},
		{"not on the target layer", []deliverySample{
			{at(1), 0, 0, false},
			{at(11), 10000, 10000, false},
		}, -1},
		{"too short to judge", []deliverySample{
			{at(1), 0, 0, true},
			{at(5), 4000, 4000, true},
		}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiveLog("x", 2)
			r.joined, r.samples = join, tc.samples
			d, ok := r.fullAfter()
			if !ok {
				d = -1
			}
			if d != tc.want {
				t.Errorf("full media after %v, want %v", d, tc.want)
			}
		})
	}
}

// A sample judges every expected track: present, started, video on the
// target layer; the publishers' payload of that layer is what is expected.
func TestDeliverySample(t *testing.T) {
	r := newReceiveLog("x", 3)
	r.target = 2
	r.tracks["v1"] = &trackLog{video: true, started: true, width: 1280, payload: 900, stream: "p1"}
	r.tracks["a1"] = &trackLog{started: true, stream: "p1"}
	sent := func(stream string, layer int) (uint64, bool) {
		if layer != 2 {
			t.Errorf("asked for layer %d", layer)
		}
		return map[string]uint64{"p1": 1000, "p2": 500}[stream], stream != "outsider"
	}
	now := time.Now()
	r.sample(now, sent) // a track is missing
	r.tracks["v2"] = &trackLog{video: true, started: true, width: 640, payload: 400, stream: "p2"}
	r.sample(now, sent) // v2 on the medium layer
	r.tracks["v2"].width = 1280
	r.sample(now, sent)
	r.tracks["v3"] = &trackLog{video: true, started: true, width: 320, payload: 50, stream: "outsider"}
	r.sample(now, sent) // a publisher outside the run is not judged
	want := []deliverySample{{now, 900, 1000, false}, {now, 1300, 1500, false}, {now, 1300, 1500, true}, {now, 1300, 1500, true}}
	for i, s := range r.samples {
		if s != want[i] {
			t.Errorf("sample %d: %+v, want %+v", i, s, want[i])
		}
	}
}

func TestDeliveryPerSecond(t *testing.T) {
	start := time.Unix(1000, 0)
	var pts []deliveryPoint
	for i := range 13 { // 3 s at 250 ms: 125 kB a second, then 250 kB
		b := uint64(i) * 31250
		if i > 8 {
			b = 8*31250 + uint64(i-8)*62500
		}
		pts = append(pts, deliveryPoint{start.Add(time.Duration(i) * deliveryEvery), b})
	}
	var rep Report
	rep.addDelivery(pts, 7)
	if len(rep.Delivery) != 3 || rep.Delivery[0].Seconds != 1 || rep.Delivery[0].RecvKbps != 1000 || rep.Delivery[2].RecvKbps != 2000 {
		t.Fatalf("delivery %+v", rep.Delivery)
	}
	if kbps, ok := rep.DeliveredKbps(0, 2); !ok || kbps != 1000 {
		t.Errorf("first 2 s: %v %v", kbps, ok)
	}
	if _, ok := rep.DeliveredKbps(5, 10); ok {
		t.Error("a window past the run has a mean")
	}
	if rep.KeyframeRequests != 7 {
		t.Errorf("keyframe requests %d", rep.KeyframeRequests)
	}
}
