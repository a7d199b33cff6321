package clip

import (
	"errors"
	"testing"
)

func TestClipsLoad(t *testing.T) {
	c, err := loadClips()
	if err != nil {
		t.Fatal(err)
	}
	video, audio := c.video, c.audio
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

func TestNoSuchLayer(t *testing.T) {
	for _, layer := range []int{-1, 3} {
		if _, err := NewVideoSource("cam", "s", false, layer); !errors.Is(err, ErrNoLayer) {
			t.Errorf("layer %d: %v, want ErrNoLayer", layer, err)
		}
	}
	// Simulcast sends every layer: the layer argument does not matter.
	if _, err := NewVideoSource("cam", "s", true, 7); err != nil {
		t.Errorf("simulcast: %v", err)
	}
}
