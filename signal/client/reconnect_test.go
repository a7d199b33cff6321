package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	waitfor "github.com/confab-sfu/confab/internal/wait"

	"github.com/confab-sfu/confab/internal/tcplb"
	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
	"github.com/pion/webrtc/v4"
	"nhooyr.io/websocket"
	"nhooyr.io/websocket/wsjson"
)

// resumeBound is how soon after a node dies its members must receive
// again through another (the issue asks for 10 s).
const resumeBound = 10 * time.Second

// mediaFrom waits until at least n packets arrived on a track of each of
// participant's sources, and returns when the first packet of the last of
// those tracks arrived.
func (r *received) mediaFrom(t *testing.T, what, participant string, n int, sources ...string) time.Time {
	t.Helper()
	var at time.Time
	r.waitFor(t, what, func(packets map[string]int, info map[string]signal.Track) bool {
		at = time.Time{}
		for _, src := range sources {
			found := false
			for id, tr := range info {
				if tr.Participant == participant && tr.Source == src && packets[id] >= n {
					found = true
					if f := r.first[id]; f.After(at) {
						at = f
					}
				}
			}
			if !found {
				return false
			}
		}
		return true
	})
	return at
}

// publishClips publishes the clip microphone and, given video, a simulcast
// camera (stamped with mid and rid) until the test ends; keyframe requests
// reach the camera through video. It returns the camera's sender.
func publishClips(t *testing.T, ctx context.Context, p *client.Peer, name string, video *atomic.Pointer[clip.VideoSource]) *webrtc.RTPSender {
	t.Helper()
	audio, err := clip.NewAudioSource(name+"-mic", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, signal.SourceMicrophone, audio.Track()); err != nil {
		t.Fatal(err)
	}
	play(t, audio.Run)
	if video == nil {
		return nil
	}
	v, err := clip.NewVideoSource(name+"-cam", name, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	video.Store(v)
	sender, err := p.Publish(ctx, signal.SourceCamera, v.Tracks()...)
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.NewStamper(sender)
	if err != nil {
		t.Fatal(err)
	}
	v.SetStamper(st)
	play(t, v.Run)
	return sender
}

func keyframesTo(video *atomic.Pointer[clip.VideoSource]) func(string) {
	return func(string) {
		if v := video.Load(); v != nil {
			v.RequestKeyframe()
		}
	}
}

// waitUntil polls cond until it holds, for at most wait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.For(t, wait, what, cond)
}

func isType(typ string) func(*signal.Message) bool {
	return func(m *signal.Message) bool { return m.Type == typ }
}

// TestReconnectToSurvivor: node 1 dies in the middle of a meeting. Ada,
// who publishes a simulcast camera and a microphone there, rejoins through
// node 2 with the same name, publishes the same sources again (once each),
// and receives Bob, who is on node 2; Bob sees her arrive and receives her,
// all within resumeBound.
func TestReconnectToSurvivor(t *testing.T) {
	n1 := testserver.StartNode(t, room.Config{})
	n2 := testserver.StartNode(t, room.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	onNode1 := newReceived()
	join(t, ctx, n1.URL, "r", "watcher", func(p *client.Params) { p.OnTrack = onNode1.onTrack })
	bobGot := newReceived()
	bob := join(t, ctx, n2.URL, "r", "bob", func(p *client.Params) { p.OnTrack = bobGot.onTrack })
	publishClips(t, ctx, bob, "bob", nil)
	adaGot := newReceived()
	var video atomic.Pointer[clip.VideoSource]
	ada := join(t, ctx, n1.URL, "r", "ada", func(p *client.Params) {
		p.OnTrack = adaGot.onTrack
		p.OnKeyframeRequest = keyframesTo(&video)
		p.Reconnect = &client.Reconnect{URLs: []string{n1.URL, n2.URL}}
	})
	cam := publishClips(t, ctx, ada, "ada", &video)
	firstID := ada.ID()
	onNode1.mediaFrom(t, "node 1 forwards ada's media", firstID, 30, signal.SourceMicrophone, signal.SourceCamera)

	killed := time.Now()
	n1.Kill()
	if ev := nextEvent(t, ada, "reconnecting", isType(client.TypeReconnecting)); ev.Code != client.CauseConnectionLost {
		t.Errorf("reconnecting because %q, want %s", ev.Code, client.CauseConnectionLost)
	}
	back := nextEvent(t, ada, "reconnected", isType(client.TypeReconnected))
	if back.Participant == nil || back.Participant.ID == firstID || back.Participant.ID != ada.ID() || ada.URL() != n2.URL {
		t.Fatalf("reconnected as %+v through %s; want a new id through %s", back.Participant, ada.URL(), n2.URL)
	}
	if !slices.ContainsFunc(back.Members, func(m signal.Participant) bool { return m.ID == bob.ID() }) {
		t.Errorf("the reconnected event lists members %+v, without bob", back.Members)
	}
	arrived := nextEvent(t, bob, "ada arrives on node 2", func(m *signal.Message) bool {
		return m.Type == signal.TypeParticipantJoined && m.Participant.ID == ada.ID()
	})
	if arrived.Participant.Name != "ada" {
		t.Errorf("ada came back as %q", arrived.Participant.Name)
	}
	bobAt := bobGot.mediaFrom(t, "bob receives ada's microphone and camera", ada.ID(), 30, signal.SourceMicrophone, signal.SourceCamera)
	adaAt := adaGot.mediaFrom(t, "ada receives bob", bob.ID(), 30, signal.SourceMicrophone)

	var sources []string
	for _, tr := range bob.Tracks() {
		if tr.Participant == ada.ID() {
			sources = append(sources, tr.Source)
		}
	}
	slices.Sort(sources)
	if !slices.Equal(sources, []string{signal.SourceCamera, signal.SourceMicrophone}) {
		t.Errorf("ada publishes %v on node 2, want her camera and microphone once each", sources)
	}
	adaGot.mu.Lock()
	for id, tr := range adaGot.info {
		if tr.Participant == bob.ID() && adaGot.urls[id] != n2.URL {
			t.Errorf("bob's track %s came through %q", id, adaGot.urls[id])
		}
	}
	adaGot.mu.Unlock()
	rc := ada.Reconnections()
	if len(rc) != 1 || rc[0].From != n1.URL || rc[0].URL != n2.URL || rc[0].Participant != ada.ID() || rc[0].Cause != client.CauseConnectionLost {
		t.Fatalf("reconnections %+v", rc)
	}
	t.Logf("node 1 killed: ada rejoined node 2 after %v (%d attempts); bob received her after %v, she received bob after %v",
		rc[0].Rejoined.Sub(killed).Round(time.Millisecond), rc[0].Attempts, bobAt.Sub(killed).Round(time.Millisecond), adaAt.Sub(killed).Round(time.Millisecond))
	for what, at := range map[string]time.Time{"bob receives ada": bobAt, "ada receives bob": adaAt} {
		if d := at.Sub(killed); d > resumeBound {
			t.Errorf("%s %v after the kill, want within %v", what, d, resumeBound)
		}
	}

	// The sender Publish returned on node 1 still unpublishes the camera.
	if err := ada.Unpublish(ctx, cam); err != nil {
		t.Fatal(err)
	}
	gone := nextEvent(t, bob, "ada's camera unpublished", func(m *signal.Message) bool {
		return m.Type == signal.TypeTrackUnpublished && m.Track.Participant == ada.ID()
	})
	if gone.Track.Source != signal.SourceCamera {
		t.Errorf("unpublished %+v, want ada's camera", gone.Track)
	}
}

// TestReconnectThroughBalancer: the balancer in front of the only server
// drops it (its connections are cut) and takes it back. Ada, who joined
// through the balancer, rejoins through the same address after attempts
// that found no server; Bob, on the same server, sees her leave and come
// back, and receives her again.
func TestReconnectThroughBalancer(t *testing.T) {
	n := testserver.StartNode(t, room.Config{})
	lb, err := tcplb.New(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bobGot := newReceived()
	bob := join(t, ctx, n.URL, "r", "bob", func(p *client.Params) { p.OnTrack = bobGot.onTrack })
	ada := join(t, ctx, lb.URL(), "r", "ada", func(p *client.Params) {
		p.Reconnect = &client.Reconnect{URLs: []string{lb.URL()}, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	})
	publishClips(t, ctx, ada, "ada", nil)
	firstID := ada.ID()
	bobGot.mediaFrom(t, "bob receives ada", firstID, 30, signal.SourceMicrophone)

	if cut, err := lb.Remove(n.URL); err != nil || cut != 1 {
		t.Fatalf("the balancer cut %d connections (%v), want ada's WebSocket", cut, err)
	}
	nextEvent(t, bob, "ada leaves", func(m *signal.Message) bool {
		return m.Type == signal.TypeParticipantLeft && m.Participant.ID == firstID
	})
	nextEvent(t, ada, "reconnecting", isType(client.TypeReconnecting))
	// Ada keeps trying while the balancer has nothing behind it.
	waitUntil(t, "attempts refused by the empty balancer", func() bool { return lb.Refused() >= 2 })
	restored := time.Now()
	if err := lb.Add(n.URL); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, ada, "reconnected", isType(client.TypeReconnected))
	back := nextEvent(t, bob, "ada comes back", func(m *signal.Message) bool {
		return m.Type == signal.TypeParticipantJoined && m.Participant.Name == "ada"
	})
	if back.Participant.ID == firstID || back.Participant.ID != ada.ID() {
		t.Errorf("ada came back as %s (first %s, now %s)", back.Participant.ID, firstID, ada.ID())
	}
	at := bobGot.mediaFrom(t, "bob receives ada again", ada.ID(), 30, signal.SourceMicrophone)
	rc := ada.Reconnections()
	if len(rc) != 1 || rc[0].URL != lb.URL() || rc[0].From != lb.URL() || rc[0].Attempts < 3 {
		t.Fatalf("reconnections %+v, want one through the balancer after at least 2 failed attempts", rc)
	}
	t.Logf("server back in the balancer: ada rejoined after %v (%d attempts in all), bob received her after %v",
		rc[0].Rejoined.Sub(restored).Round(time.Millisecond), rc[0].Attempts, at.Sub(restored).Round(time.Millisecond))
}

// TestReconnectStopsOnFinalRefusal: a rejoin the surviving server refuses
// for good stops reconnecting at once, and says why.
func TestReconnectStopsOnFinalRefusal(t *testing.T) {
	for _, tc := range []struct {
		code string
		cfg  room.Config
	}{
		{signal.CodeRoomFull, room.Config{MaxParticipants: 1}},
		{signal.CodeInvalidToken, room.Config{AuthSecret: []byte("a secret of thirty-two bytes....")}},
	} {
		t.Run(tc.code, func(t *testing.T) {
			n1 := testserver.StartNode(t, room.Config{})
			n2 := testserver.StartNode(t, tc.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if tc.code == signal.CodeRoomFull {
				join(t, ctx, n2.URL, "r", "carol", nil)
			}
			// Node 1 has no auth secret: it ignores the token.
			ada := join(t, ctx, n1.URL, "r", "ada", func(p *client.Params) {
				p.Token = "not-a-token"
				p.Reconnect = &client.Reconnect{URLs: []string{n1.URL, n2.URL}, MinBackoff: 20 * time.Millisecond}
			})
			n1.Kill()
			nextEvent(t, ada, "reconnecting", isType(client.TypeReconnecting))
			ended := nextEvent(t, ada, "ended", isType(client.TypeEnded))
			var serr *signal.Error
			if ended.Code != tc.code || !errors.As(ada.Err(), &serr) || serr.Code != tc.code {
				t.Errorf("ended with %q, Err %v; want %s", ended.Code, ada.Err(), tc.code)
			}
			select {
			case <-ada.Done():
			case <-time.After(wait):
				t.Fatal("the peer did not finish after ending")
			}
			if rc := ada.Reconnections(); len(rc) != 0 {
				t.Errorf("reconnections %+v after a refusal", rc)
			}
			if err := ada.Leave(); err != nil {
				t.Errorf("leave after the end: %v", err)
			}
		})
	}
}

// TestReconnectGivesUp: with every server gone, the peer stops after
// MaxAttempts; and Leave in the middle of a long backoff returns at once.
func TestReconnectGivesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Run("attempts", func(t *testing.T) {
		n := testserver.StartNode(t, room.Config{})
		p := join(t, ctx, n.URL, "r", "ada", func(p *client.Params) {
			p.Reconnect = &client.Reconnect{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxAttempts: 3}
		})
		n.Kill()
		ended := nextEvent(t, p, "ended", isType(client.TypeEnded))
		if ended.Code != client.CodeGaveUp || !errors.Is(p.Err(), client.ErrGaveUp) {
			t.Errorf("ended with %q, Err %v; want %s", ended.Code, p.Err(), client.CodeGaveUp)
		}
		<-p.Done()
	})
	t.Run("leave during backoff", func(t *testing.T) {
		n := testserver.StartNode(t, room.Config{})
		p := join(t, ctx, n.URL, "r", "ada", func(p *client.Params) {
			p.Reconnect = &client.Reconnect{MinBackoff: time.Minute, MaxOutage: time.Hour}
		})
		n.Kill()
		nextEvent(t, p, "reconnecting", isType(client.TypeReconnecting))
		start := time.Now()
		if err := p.Leave(); err != nil {
			t.Errorf("leave: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("leave took %v while waiting to rejoin", d)
		}
		if p.Err() != nil {
			t.Errorf("a peer that left reports %v", p.Err())
		}
	})
}

// TestReconnectEndsOnRemoval: a goodbye that sends the peer away (a
// moderator removed it) is final: the peer ends without dialing again.
func TestReconnectEndsOnRemoval(t *testing.T) {
	var dials atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dials.Add(1)
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		var join signal.Message
		if err := wsjson.Read(ctx, ws, &join); err != nil || join.Type != signal.TypeJoin {
			return
		}
		for _, m := range []signal.Message{
			{Type: signal.TypeWelcome, ID: join.ID, Participant: &signal.Participant{ID: "P1", Name: join.Name}},
			{Type: signal.TypeBye, Code: signal.CodeRemoved, Message: "removed by a moderator"},
		} {
			if err := wsjson.Write(ctx, ws, m); err != nil {
				return
			}
		}
		_ = ws.Close(websocket.StatusPolicyViolation, "removed by a moderator")
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p := join(t, ctx, srv.URL, "r", "ada", func(p *client.Params) {
		p.Reconnect = &client.Reconnect{MinBackoff: 10 * time.Millisecond}
	})
	nextEvent(t, p, "bye", isType(signal.TypeBye))
	ended := nextEvent(t, p, "ended", isType(client.TypeEnded))
	var serr *signal.Error
	if ended.Code != signal.CodeRemoved || !errors.As(p.Err(), &serr) || serr.Code != signal.CodeRemoved {
		t.Errorf("ended with %q, Err %v; want %s", ended.Code, p.Err(), signal.CodeRemoved)
	}
	if _, open := <-p.Events(); open {
		t.Error("events still open after the end")
	}
	<-p.Done()
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections to the server, want 1: a removed peer must not come back", n)
	}
}

// TestJoinTriesEachServer: with Reconnect, the first join moves on from a
// server that is not there, but not from a final refusal.
func TestJoinTriesEachServer(t *testing.T) {
	live := testserver.StartNode(t, room.Config{})
	strict := testserver.StartNode(t, room.Config{AuthSecret: []byte("a secret of thirty-two bytes....")})
	dead := testserver.StartNode(t, room.Config{})
	dead.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p := join(t, ctx, dead.URL, "r", "ada", func(p *client.Params) {
		p.Reconnect = &client.Reconnect{URLs: []string{live.URL}}
	})
	if p.URL() != live.URL {
		t.Errorf("joined through %s, want %s", p.URL(), live.URL)
	}
	_, err := client.Join(ctx, client.Params{URL: strict.URL, Room: "r", Name: "bob", Token: "not-a-token", API: loopbackAPI(t),
		Reconnect: &client.Reconnect{URLs: []string{live.URL}}})
	var serr *signal.Error
	if !errors.As(err, &serr) || serr.Code != signal.CodeInvalidToken {
		// Had it gone on to the live server, the join would have succeeded.
		t.Errorf("join refused for its token: %v, want %s and no other server tried", err, signal.CodeInvalidToken)
	}
	if _, err := client.Join(ctx, client.Params{URL: dead.URL, Room: "r", Name: "carol", API: loopbackAPI(t)}); err == nil {
		t.Error("joined a dead server without Reconnect")
	}
}
