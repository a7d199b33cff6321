package room_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// checkTracks verifies that p received from each named publisher exactly
// the expected kinds, at least min packets each, all byte-identical to what
// the publisher sent but for a VP8 picture id renumbered after a pause
// (source.intact).
func checkTracks(p *testPeer, min int, from map[string][]*source) (bool, string) {
	snap := p.rec.snapshot()
	for pubID, sources := range from {
		for _, s := range sources {
			found := false
			for _, rc := range snap {
				if rc.publisher != pubID || rc.kind != s.kind {
					continue
				}
				found = true
				if len(rc.payloads) < min {
					return false, fmt.Sprintf("%s: %d %s packets from %s, want %d", p.ID(), len(rc.payloads), s.kind, s.name, min)
				}
				for i, pl := range rc.payloads {
					if !s.intact(pl) {
						return false, fmt.Sprintf("%s: %s packet %d from %s differs from anything sent: %q", p.ID(), s.kind, i, s.name, pl[:min2(len(pl), 40)])
					}
				}
			}
			if !found {
				return false, fmt.Sprintf("%s: no %s track from %s (has %d tracks)", p.ID(), s.kind, s.name, len(snap))
			}
		}
	}
	return true, ""
}

func min2(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func TestThreeParticipantsExchangeMediaIntact(t *testing.T) {
	// Registered first, so it runs last: after every participant left and
	// the server closed, goroutines are back to the baseline.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{})

	names := []string{"ada", "grace", "linus"}
	peers := make([]*testPeer, len(names))
	sources := map[string][]*source{}
	for i, n := range names {
		peers[i] = join(t, ctx, url, "standup", n)
	}
	for i, n := range names {
		sources[peers[i].ID()] = publish(t, ctx, peers[i], n, "audio", "video")
	}
	for i, p := range peers {
		others := map[string][]*source{}
		for j, q := range peers {
			if i != j {
				others[q.ID()] = sources[q.ID()]
			}
		}
		wait.Until(t, 20*time.Second, names[i]+" receives both others' audio and video", func() (bool, string) {
			return checkTracks(p, 25, others)
		})
		if n := len(p.rec.snapshot()); n != 4 {
			t.Fatalf("%s receives %d tracks, want 4", names[i], n)
		}
	}
	for _, p := range peers {
		if err := p.Leave(); err != nil {
			t.Fatalf("leave: %v", err)
		}
		p.rec.wg.Wait()
	}
}

func TestLateJoinerScreenShareAndLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mgr, url := startServer(t, room.Config{})

	a := join(t, ctx, url, "lecture-hall", "ada")
	b := join(t, ctx, url, "lecture-hall", "bob")
	aSrc := publish(t, ctx, a, "ada", "audio", "video")

	// A track is announced once its first packet arrives.
	wait.Until(t, 10*time.Second, "ada's tracks announced", func() (bool, string) {
		return len(b.Tracks()) == 2, fmt.Sprintf("bob knows %d tracks", len(b.Tracks()))
	})
	// A late joiner gets what was published before it came.
	c := join(t, ctx, url, "lecture-hall", "cy")
	if got := len(c.Welcome().Tracks); got != 2 {
		t.Fatalf("late joiner's welcome lists %d tracks, want 2", got)
	}
	if got := len(c.Welcome().Members); got != 2 {
		t.Fatalf("late joiner's welcome lists %d members, want 2", got)
	}
	wait.Until(t, 20*time.Second, "late joiner receives ada", func() (bool, string) {
		return checkTracks(c, 20, map[string][]*source{a.ID(): aSrc})
	})

	// A screen share added mid-call reaches everyone through renegotiation;
	// it is H.264, so the second codec is forwarded too.
	screen := newSource(t, "h264", "bob-screen")
	if _, err := b.Publish(ctx, signal.SourceScreen, screen.track); err != nil {
		t.Fatalf("publish screen: %v", err)
	}
	screen.run(ctx)
	defer screen.halt()
	for _, p := range []*testPeer{a, c} {
		wait.Until(t, 20*time.Second, "screen share arrives", func() (bool, string) {
			for _, rc := range p.rec.snapshot() {
				if rc.publisher == b.ID() && rc.source == signal.SourceScreen && len(rc.payloads) >= 20 {
					if rc.codec != webrtc.MimeTypeH264 {
						return false, "screen share arrived as " + rc.codec
					}
					for _, pl := range rc.payloads {
						if !screen.wasSent(pl) {
							return false, "screen payload corrupted"
						}
					}
					return true, ""
				}
			}
			return false, "no screen track yet"
		})
	}

	// Ada leaves: the others are told, and her tracks stop after renegotiation.
	if err := a.Leave(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*testPeer{b, c} {
		wait.Until(t, 15*time.Second, "ada's departure is seen", func() (bool, string) {
			ended := 0
			for _, rc := range p.rec.snapshot() {
				if rc.publisher == a.ID() && rc.ended {
					ended++
				}
			}
			left := p.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == a.ID() })
			unpublished := p.saw(signal.TypeTrackUnpublished, func(m *signal.Message) bool { return m.Track.Participant == a.ID() })
			return ended == 2 && left && unpublished, fmt.Sprintf("%d of ada's tracks ended, participant_left %v, track_unpublished %v", ended, left, unpublished)
		})
	}
	if r := mgr.Room("lecture-hall"); r == nil || len(r.Participants()) != 2 {
		t.Fatal("room should hold the two remaining participants")
	}
}
