package loadtest

import "testing"

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
