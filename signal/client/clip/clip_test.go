package loadtest

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestClipsLoad(t *testing.T) {
	video, audio, err := loadClips()
	if err != nil {
		t.Fatal(err)
	}
	if len(video) != 3 {
		t.Fatalf("%d layers", len(video))
	}
	for i, frames := range video {
		keys := 0
		for _, f := range frames {
			if f.key {
				keys++
			}
		}
		if len(frames) < 100 || keys < 2 {
			t.Errorf("layer %d: %d frames, %d keyframes", i, len(frames), keys)
		}
		if len(frames) != len(video[0]) {
			t.Errorf("layer %d has %d frames, layer 0 has %d: layers must loop together", i, len(frames), len(video[0]))
		}
	}
	if len(audio) < 150 {
		t.Errorf("%d audio packets for 4 s", len(audio))
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
