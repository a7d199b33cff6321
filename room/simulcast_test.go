package room_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
)

// startLecture starts a server and a simulcast publisher and returns them.
func startSimulcastPublisher(t *testing.T, ctx context.Context, url, roomName string) (*testPeer, *simulcastCamera) {
	t.Helper()
	return publishSimulcastCamera(t, ctx, url, roomName, false)
}

// publishSimulcastCamera joins as "presenter" and publishes the simulcast
// camera. With obey it does what a browser does with publish_layers:
// stops the encodings not named, and starts a resumed one on a keyframe.
func publishSimulcastCamera(t *testing.T, ctx context.Context, url, roomName string, obey bool) (*testPeer, *simulcastCamera) {
	t.Helper()
	cam := newSimulcastCamera(t, "presenter")
	api, err := client.NewAPI(client.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	params := client.Params{URL: url, Room: roomName, Name: "presenter", API: api, OnKeyframeRequest: cam.onKeyframeRequest}
	if obey {
		params.OnPublishLayers = cam.publishLayers
	}
	p, err := client.Join(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Leave() })
	sender, err := p.Publish(ctx, signal.SourceCamera, cam.trackLocals()...)
	if err != nil {
		t.Fatalf("publish simulcast: %v", err)
	}
	if cam.stamp, err = p.NewStamper(sender); err != nil {
		t.Fatal(err)
	}
	cam.run(ctx)
	t.Cleanup(cam.halt)
	tp := &testPeer{Peer: p, rec: newRecorder()}
	go tp.collect()
	return tp, cam
}

func subscribe(t *testing.T, ctx context.Context, s *subscriber, sub signal.Subscription) {
	t.Helper()
	if _, err := s.Client().Request(ctx, &signal.Message{Type: signal.TypeSubscribe, Subscriptions: []signal.Subscription{sub}}); err != nil {
		t.Fatalf("subscribe %+v: %v", sub, err)
	}
}

func waitWidth(t *testing.T, s *subscriber, width uint16, within time.Duration, what string) time.Duration {
	t.Helper()
	return wait.Until(t, within, what, func() (bool, string) {
		w := s.video.lastWidth()
		return w == width, fmt.Sprintf("receiving width %d, want %d", w, width)
	})
}

func TestSimulcastForcedSwitchesStayContinuous(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{})
	_, cam := startSimulcastPublisher(t, ctx, url, "switches")
	s := joinSubscriber(t, ctx, url, "switches", "viewer", nil)
	wait.Until(t, 10*time.Second, "video track known", func() (bool, string) { return s.videoTrackID() != "", "" })
	id := s.videoTrackID()

	waitWidth(t, s, 1280, 10*time.Second, "start on the top layer")
	steps := []struct {
		sub   signal.Subscription
		width uint16
	}{
		{signal.Subscription{TrackID: id, MaxLayer: signal.LayerLow}, 320},
		{signal.Subscription{TrackID: id, MaxLayer: signal.LayerHigh}, 1280},
		{signal.Subscription{TrackID: id, MaxLayer: signal.LayerMedium}, 640},
		{signal.Subscription{TrackID: id, MaxWidth: 400, MaxHeight: 300}, 320},
		{signal.Subscription{TrackID: id, MaxLayer: signal.LayerHigh}, 1280},
	}
	for _, st := range steps {
		subscribe(t, ctx, s, st.sub)
		d := waitWidth(t, s, st.width, 5*time.Second, fmt.Sprintf("switch to %+v", st.sub))
		if st.width > 320 && d > time.Second {
			t.Errorf("keyframe of the higher layer took %v after the switch, want < 1s", d)
		}
		t.Logf("switch to width %d took %v", st.width, d.Round(time.Millisecond))
		n := s.video.count()
		wait.For(t, 5*time.Second, "20 packets of the new layer", func() bool { return s.video.count() >= n+20 })
	}
	// Pause: nothing arrives while the publisher sends 150 packets (after
	// 50 more, whatever was in flight has landed). Resume: the stream
	// continues.
	subscribe(t, ctx, s, signal.Subscription{TrackID: id, Paused: true})
	wait.For(t, 5*time.Second, "the pause decided", func() bool { return s.decision(id).Paused })
	sent := cam.sent.Load()
	wait.For(t, 5*time.Second, "the publisher to send 50 packets", func() bool { return cam.sent.Load() >= sent+50 })
	before, sent := s.video.count(), cam.sent.Load()
	wait.For(t, 5*time.Second, "the publisher to send 150 packets", func() bool { return cam.sent.Load() >= sent+150 })
	if during := s.video.count() - before; during > 0 {
		t.Errorf("%d packets arrived while paused", during)
	}
	subscribe(t, ctx, s, signal.Subscription{TrackID: id})
	wait.Until(t, 5*time.Second, "resume", func() (bool, string) {
		s.video.mu.Lock()
		defer s.video.mu.Unlock()
		return s.video.packets > before+60, "no packets after resume"
	})

	// One continuous stream across every switch, pause and resume.
	s.video.mu.Lock()
	defer s.video.mu.Unlock()
	for i := 1; i < len(s.video.seqs); i++ {
		if s.video.seqs[i] != s.video.seqs[i-1]+1 {
			t.Fatalf("sequence jumps from %d to %d at packet %d", s.video.seqs[i-1], s.video.seqs[i], i)
		}
		if d := int32(s.video.tss[i] - s.video.tss[i-1]); d < 0 {
			t.Fatalf("timestamp goes back by %d at packet %d", -d, i)
		}
	}
	for i := 1; i < len(s.video.pids); i++ {
		if d := (s.video.pids[i] - s.video.pids[i-1]) & 0x7fff; d > 1 {
			t.Fatalf("picture id jumps from %d to %d at packet %d", s.video.pids[i-1], s.video.pids[i], i)
		}
	}
	t.Logf("%d packets, %d keyframes, one continuous stream", len(s.video.seqs), len(s.video.keys))
}

func signalSub(trackID, maxLayer string) signal.Subscription {
	return signal.Subscription{TrackID: trackID, MaxLayer: maxLayer}
}

func TestSimulcastFallsBackWhenALayerStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{})
	_, cam := startSimulcastPublisher(t, ctx, url, "fallback")
	s := joinSubscriber(t, ctx, url, "fallback", "viewer", nil)
	waitWidth(t, s, 1280, 10*time.Second, "top layer")
	// The publisher's uplink shrinks and it stops sending its top layer.
	cam.stopped[2].Store(true)
	d := waitWidth(t, s, 640, 5*time.Second, "fall back to the medium layer")
	t.Logf("fell back %v after the top layer stopped", d.Round(time.Millisecond))
	// It comes back: the subscriber climbs again.
	cam.stopped[2].Store(false)
	waitWidth(t, s, 1280, 10*time.Second, "back on the top layer")
}
