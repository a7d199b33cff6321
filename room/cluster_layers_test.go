package room_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
)

// TestClusterRelayCarriesWantedLayers: a simulcast camera on node 1 and
// its one subscriber on node 2. The relay carries the layers the
// subscriber asks for and layer 0, following its requests; when the
// subscriber leaves, node 2 stops pulling and the link closes, while the
// publisher goes on.
func TestClusterRelayCarriesWantedLayers(t *testing.T) {
	nodes := startNodes(t, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	video, err := clip.NewVideoSource("cam", "a", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := joinWith(t, ctx, nodes[0].URL, "sim", "a", loopbackOpts, func(o *client.Params) {
		o.OnKeyframeRequest = func(string) { video.RequestKeyframe() }
	})
	b := join(t, ctx, nodes[1].URL, "sim", "b")
	sender, err := a.Publish(ctx, signal.SourceCamera, video.Tracks()...)
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.NewStamper(sender)
	if err != nil {
		t.Fatal(err)
	}
	video.SetStamper(st)
	done := make(chan struct{})
	go func() { defer close(done); video.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	layersRelayed := func(want int, what string) {
		t.Helper()
		took := wait.Until(t, 15*time.Second, what, func() (bool, string) {
			st := relayed(nodes[0], nodes[1])
			return st.Layers == want && st.Tracks == 1, fmt.Sprintf("%d tracks, %d layers relayed", st.Tracks, st.Layers)
		})
		was := b.rec.packets()
		wait.For(t, 10*time.Second, "b keeps receiving ("+what+")", func() bool { return b.rec.packets() > was+50 })
		t.Logf("%s after %v", what, took.Round(time.Millisecond))
	}
	// By default a subscriber wants the best layer: the top one and the
	// lowest cross.
	layersRelayed(2, "the top layer and layer 0 relayed")
	var track string
	for _, tr := range b.Tracks() {
		track = tr.ID
	}
	if err := b.Subscribe(ctx, signal.Subscription{TrackID: track, MaxLayer: signal.LayerName(0)}); err != nil {
		t.Fatal(err)
	}
	layersRelayed(1, "only layer 0 relayed for a subscriber capped low")
	if err := b.Subscribe(ctx, signal.Subscription{TrackID: track, MaxLayer: signal.LayerName(1)}); err != nil {
		t.Fatal(err)
	}
	layersRelayed(2, "layers 0 and 1 relayed for a subscriber capped at the middle")

	if err := b.Leave(); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "node 2 stops pulling", func() (bool, string) {
		st := relayed(nodes[0], nodes[1])
		return st.Links == 0 && st.Tracks == 0, fmt.Sprintf("%d links, %d tracks", st.Links, st.Tracks)
	})
	if rooms, _ := nodes[0].Manager.Counts(); rooms != 1 {
		t.Errorf("the publisher's node has %d rooms", rooms)
	}
}
