package sfu

import (
	"slices"
	"testing"
	"time"
)

func TestPublishedRIDsFollowTheRIDScheme(t *testing.T) {
	for _, c := range []struct {
		rids   []string
		layers []int
		want   []string
	}{
		{[]string{"l", "m", "h"}, []int{0}, []string{"l"}},
		{[]string{"l", "m", "h"}, []int{0, 2}, []string{"l", "h"}},
		{[]string{"q", "h", "f"}, []int{0, 1}, []string{"q", "h"}},
		{[]string{"f", "h", "q"}, []int{2}, []string{"f"}},
		{[]string{"a", "b"}, []int{1}, []string{"b"}},
	} {
		r := &Receiver{rids: c.rids, simulcast: true}
		if got := r.PublishedRIDs(c.layers); !slices.Equal(got, c.want) {
			t.Errorf("rids %v, layers %v: got %v, want %v", c.rids, c.layers, got, c.want)
		}
		if got := r.DeclaredLayers(); len(got) != len(c.rids) {
			t.Errorf("rids %v: declared layers %v", c.rids, got)
		}
	}
	single := &Receiver{}
	if single.PublishedRIDs([]int{0}) != nil || single.DeclaredLayers() != nil {
		t.Error("a track without simulcast has no RIDs to pause")
	}
}

// What a lecture's viewers ask for is what the publisher must send: all
// on the low layer want only it; one asking for the top wants it too.
func TestWantedLayersFollowSubscribers(t *testing.T) {
	r, downs, _ := newTestReceiver(3, 3)
	for _, d := range downs {
		d.mu.Lock()
		d.maxLayer = 0
		d.mu.Unlock()
	}
	if got := r.WantedLayers(); !slices.Equal(got, []int{0}) {
		t.Fatalf("everyone on the low layer: wanted %v", got)
	}
	downs[1].mu.Lock()
	downs[1].maxLayer = 2
	downs[1].mu.Unlock()
	if got := r.WantedLayers(); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("one asks for the top: wanted %v", got)
	}
	downs[1].mu.Lock()
	downs[1].paused = true
	downs[1].mu.Unlock()
	if got := r.WantedLayers(); !slices.Equal(got, []int{0}) {
		t.Fatalf("the one asking for the top paused it: wanted %v", got)
	}
}

// Load shedding lowers what subscribers want, so the publisher can stop
// the layers shedding holds back.
func TestWantedLayersFollowShedding(t *testing.T) {
	r, downs, _ := newTestReceiver(3, 2)
	e := &Engine{}
	for _, d := range downs {
		d.peer.engine = e
	}
	if got := r.WantedLayers(); !slices.Equal(got, []int{2}) {
		t.Fatalf("no shedding: wanted %v", got)
	}
	e.shed.Store(&Shed{MaxLayer: 1})
	if got := r.WantedLayers(); !slices.Equal(got, []int{1}) {
		t.Fatalf("shedding caps at medium: wanted %v", got)
	}
	e.shed.Store(&Shed{MaxLayer: 2, PauseBackground: true})
	downs[0].background.Store(true)
	if got := r.WantedLayers(); !slices.Equal(got, []int{2}) || downs[0].wantedLayer() != noLayer {
		t.Fatalf("background video paused: wanted %v (background one %d)", got, downs[0].wantedLayer())
	}
}

// A recording wants the top layer even when every subscriber watches the
// low one: dynacast must not pause what is being recorded.
func TestWantedLayersIncludeARecording(t *testing.T) {
	r, downs, _ := newTestReceiver(3, 1)
	r.rids = []string{"l", "m", "h"}
	downs[0].mu.Lock()
	downs[0].maxLayer = 0
	downs[0].mu.Unlock()
	if got := r.WantedLayers(); !slices.Equal(got, []int{0}) {
		t.Fatalf("without a recording: wanted %v", got)
	}
	s, err := r.AddSink(&sinkLog{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.WantedLayers(); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("while recording: wanted %v, want the top layer too", got)
	}
	s.Close()
	if got := r.WantedLayers(); !slices.Equal(got, []int{0}) {
		t.Fatalf("recording stopped: wanted %v", got)
	}
}

// A layer the publisher declared but has not sent (a browser starts its
// top layer late, or dynacast paused it before it ever came) is still
// chosen for a large tile: otherwise nobody would ever want it, and
// dynacast would never ask the publisher for it.
func TestLayerForSizeCountsDeclaredLayers(t *testing.T) {
	r, _, _ := newTestReceiver(1, 0) // only the low layer has arrived
	r.rids, r.simulcast = []string{"l", "m", "h"}, true
	(&feeder{}).send(r, 0, true, time.Now().UnixNano()) // 320x180
	if got := r.layerForSize(1280, 720); got != 2 {
		t.Fatalf("a 1280x720 tile with only the low layer arrived: layer %d, want 2 (declared)", got)
	}
	if got := r.layerForSize(700, 400); got != 1 {
		t.Fatalf("a 700x400 tile: layer %d, want 1", got)
	}
}

// A publisher that renegotiates before its first packet (a browser adding
// its microphone after its camera) still has each RID once: pion lists a
// RID's track again for every such offer, and a duplicate would reach the
// publisher in publish_layers.
func TestRenegotiationBeforeMediaKeepsEachRIDOnce(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	pub := newClient(t, e, clientOpts{})
	src := newSource(t, "cam", true)
	src.negotiate(t, pub, SourceCamera)
	for range 2 {
		if err := pub.offer(nil); err != nil {
			t.Fatal(err)
		}
	}
	src.start(t)
	r := pub.nextReceiver()
	if got := r.PublishedRIDs([]int{0, 1, 2}); !slices.Equal(got, []string{"l", "m", "h"}) {
		t.Fatalf("published RIDs %v, want [l m h]", got)
	}
}
