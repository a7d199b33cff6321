package sfu

import (
	"errors"
	"testing"

	"github.com/confab-sfu/confab/internal/wait"
)

// Peers subscribe to tracks by id: an id that names no live track is
// refused with ErrUnknownTrack, before and after the track lived.
func TestSubscribeByID(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	pub, recvs := publishN(t, e, 1)
	sub := newClient(t, e, clientOpts{})
	if err := sub.peer.Subscribe("T-none"); !errors.Is(err, ErrUnknownTrack) {
		t.Fatalf("subscribing to an unknown id: %v, want ErrUnknownTrack", err)
	}
	_, _, w := subscribeAndWatch(t, sub, recvs[0], false)
	wait.For(t, patience, "media of the track", func() bool { return w.count() >= 5 })

	pub.peer.StopPublishing()
	wait.Recv(t, recvs[0].Done(), patience, "the track to end")
	if err := sub.peer.Subscribe(recvs[0].ID()); !errors.Is(err, ErrUnknownTrack) {
		t.Fatalf("subscribing to an ended track: %v, want ErrUnknownTrack", err)
	}
	if e.track(recvs[0].ID()) != nil {
		t.Fatal("the ended track is still listed by the engine")
	}
}

// SetLimits applies a subscriber's wishes all or none, and Decisions
// reports the video tracks' forwarding.
func TestSetLimitsAllOrNone(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 1)
	sub := newClient(t, e, clientOpts{})
	d, _, w := subscribeAndWatch(t, sub, recvs[0], false)
	wait.For(t, patience, "media of the track", func() bool { return w.count() >= 5 })

	err := sub.peer.SetLimits([]Limit{{Track: recvs[0].ID(), MaxLayer: 0, Paused: true}, {Track: "T-none"}})
	if !errors.Is(err, ErrUnknownTrack) {
		t.Fatalf("limits naming an unknown track: %v, want ErrUnknownTrack", err)
	}
	if d.requestedLayer() != maxLayers-1 || d.subscriberPaused() {
		t.Fatal("a refused SetLimits changed a track it named")
	}
	if err := sub.peer.SetLimits([]Limit{{Track: recvs[0].ID(), MaxLayer: 0, Paused: true}}); err != nil {
		t.Fatal(err)
	}
	if d.requestedLayer() != 0 || !d.subscriberPaused() {
		t.Fatal("SetLimits did not cap and pause the track")
	}
	decs := sub.peer.Decisions()
	if len(decs) != 1 || decs[0].TrackID != recvs[0].ID() || !decs[0].Paused || decs[0].Reason != "paused" {
		t.Fatalf("decisions %+v, want the paused track", decs)
	}
	paused := wait.Recv(t, sub.changed, patience, "OnDecision")
	for len(sub.changed) > 0 {
		paused = <-sub.changed
	}
	if paused.TrackID != recvs[0].ID() || !paused.Paused {
		t.Fatalf("OnDecision reported %+v, want the paused track", paused)
	}
}
