package room_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
)

// publishLayers is the camera's publish_layers handler (dynacast).
func (c *simulcastCamera) publishLayers(_ string, rids []string) {
	for i, l := range cameraLayers {
		stop := !slices.Contains(rids, l.rid)
		if was := c.stopped[i].Swap(stop); was && !stop {
			c.keyWanted[i].Store(true)
		}
	}
}

// sending describes which layers the camera sends, for messages.
func (c *simulcastCamera) sending() string {
	var on []string
	for i, l := range cameraLayers {
		if !c.stopped[i].Load() {
			on = append(on, l.rid)
		}
	}
	return fmt.Sprint(on)
}

// A lecture whose viewers all watch the low layer makes its publisher stop
// the two others; one viewer asking for the top layer brings it back and
// receives it, while the rest stay on the low layer.
func TestDynacastPausesLayersNobodyWatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{})
	_, cam := publishSimulcastCamera(t, ctx, url, "dyn", true)
	var viewers []*subscriber
	for i := range 3 {
		viewers = append(viewers, joinSubscriber(t, ctx, url, "dyn", fmt.Sprintf("v%d", i), nil))
	}
	id := ""
	wait.Until(t, 10*time.Second, "the video track announced", func() (bool, string) { id = viewers[0].videoTrackID(); return id != "", "" })
	for _, v := range viewers {
		subscribe(t, ctx, v, signalSub(id, signal.LayerLow))
	}
	start := time.Now()
	wait.Until(t, 15*time.Second, "the publisher to send the low layer only", func() (bool, string) {
		return cam.stopped[1].Load() && cam.stopped[2].Load() && !cam.stopped[0].Load(), "sending " + cam.sending()
	})
	t.Logf("publisher paused medium and high %.1f s after every viewer asked for low", time.Since(start).Seconds())
	// The viewers keep their picture.
	for _, v := range viewers {
		n := v.video.media()
		wait.Until(t, 10*time.Second, "media on the low layer with the others paused", func() (bool, string) {
			return v.video.media() >= n+60 && v.video.lastWidth() == 320, fmt.Sprintf("%d packets, width %d", v.video.media()-n, v.video.lastWidth())
		})
	}

	subscribe(t, ctx, viewers[0], signalSub(id, signal.LayerHigh))
	start = time.Now()
	waitWidth(t, viewers[0], 1280, 10*time.Second, "the top layer back for the viewer who asked for it")
	t.Logf("top layer received %.2f s after a viewer asked for it (publisher sending %s)", time.Since(start).Seconds(), cam.sending())
	if cam.stopped[2].Load() || !cam.stopped[1].Load() {
		t.Fatalf("publisher sends %s, want l and h", cam.sending())
	}
	for _, v := range viewers[1:] {
		if w := v.video.lastWidth(); w != 320 {
			t.Errorf("a viewer who asked for low receives width %d", w)
		}
	}

	// Nobody wants it any more: paused again, after the hold.
	subscribe(t, ctx, viewers[0], signalSub(id, signal.LayerLow))
	wait.Until(t, 15*time.Second, "the top layer paused again", func() (bool, string) {
		return cam.stopped[2].Load(), "sending " + cam.sending()
	})
}
