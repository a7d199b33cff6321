package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// Every peer's goroutines, and the media sources', end once it has left.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait of a test.
const wait = 20 * time.Second

func loopbackAPI(t *testing.T) *webrtc.API {
	t.Helper()
	api, err := client.NewAPI(client.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// received counts the RTP packets that arrive on each forwarded track.
type received struct {
	mu      sync.Mutex
	packets map[string]int // by track id
	first   map[string]time.Time
	info    map[string]signal.Track
	urls    map[string]string // the server each track came through
	changed chan struct{}
}

func newReceived() *received {
	return &received{packets: map[string]int{}, first: map[string]time.Time{}, info: map[string]signal.Track{},
		urls: map[string]string{}, changed: make(chan struct{}, 1)}
}

func (r *received) onTrack(rt *client.RemoteTrack) {
	r.mu.Lock()
	r.info[rt.Info.ID] = rt.Info
	r.urls[rt.Info.ID] = rt.URL
	r.mu.Unlock()
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := rt.Track.Read(buf); err != nil {
				return
			}
			r.mu.Lock()
			if r.packets[rt.Info.ID] == 0 {
				r.first[rt.Info.ID] = time.Now()
			}
			r.packets[rt.Info.ID]++
			r.mu.Unlock()
			select {
			case r.changed <- struct{}{}:
			default:
			}
		}
	}()
}

// waitFor waits until ok holds for what was received.
func (r *received) waitFor(t *testing.T, what string, ok func(packets map[string]int, info map[string]signal.Track) bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		r.mu.Lock()
		done := ok(r.packets, r.info)
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("%s: not within %v (packets %v, tracks %v)", what, wait, r.packets, r.info)
		}
	}
}

// nextEvent returns the first event of p that match accepts.
func nextEvent(t *testing.T, p *client.Peer, what string, match func(*signal.Message) bool) *signal.Message {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case m, ok := <-p.Events():
			if !ok {
				t.Fatalf("%s: events closed", what)
			}
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("%s: no such event within %v", what, wait)
		}
	}
}

func join(t *testing.T, ctx context.Context, url, roomName, name string, tweak func(*client.Params)) *client.Peer {
	t.Helper()
	params := client.Params{URL: url, Room: roomName, Name: name, API: loopbackAPI(t)}
	if tweak != nil {
		tweak(&params)
	}
	p, err := client.Join(ctx, params)
	if err != nil {
		t.Fatalf("%s joins: %v", name, err)
	}
	t.Cleanup(func() { _ = p.Leave() })
	return p
}

// play runs a clip source until the test ends.
func play(t *testing.T, run func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestPublishReceiveLeave: what one peer publishes reaches the other with
// its source; the server's keyframe request reaches the publisher; the
// other sees the unpublish and the leave; the peer that left is done.
func TestPublishReceiveLeave(t *testing.T) {
	_, url := testserver.Start(t, room.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := newReceived()
	bob := join(t, ctx, url, "r", "bob", func(p *client.Params) { p.OnTrack = got.onTrack })
	keyframes := make(chan string, 16)
	ada := join(t, ctx, url, "r", "ada", func(p *client.Params) {
		p.OnKeyframeRequest = func(id string) {
			select {
			case keyframes <- id:
			default:
			}
		}
	})
	nextEvent(t, bob, "ada joins", func(m *signal.Message) bool {
		return m.Type == signal.TypeParticipantJoined && m.Participant.ID == ada.ID()
	})

	audio, err := clip.NewAudioSource("ada-mic", "ada")
	if err != nil {
		t.Fatal(err)
	}
	video, err := clip.NewVideoSource("ada-cam", "ada", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ada.Publish(ctx, signal.SourceMicrophone, audio.Track()); err != nil {
		t.Fatal(err)
	}
	cam, err := ada.Publish(ctx, signal.SourceCamera, video.Tracks()...)
	if err != nil {
		t.Fatal(err)
	}
	play(t, audio.Run)
	play(t, video.Run)

	got.waitFor(t, "bob receives ada's microphone and camera", func(packets map[string]int, info map[string]signal.Track) bool {
		sources := map[string]bool{}
		for id, tr := range info {
			if tr.Participant == ada.ID() && packets[id] >= 30 {
				sources[tr.Source] = true
			}
		}
		return sources[signal.SourceMicrophone] && sources[signal.SourceCamera]
	})
	select {
	case id := <-keyframes:
		if id != "ada-cam" {
			t.Errorf("keyframe request for %q, want ada-cam", id)
		}
	case <-time.After(wait):
		t.Error("the server's keyframe request never reached the publisher")
	}

	if err := ada.Unpublish(ctx, cam); err != nil {
		t.Fatal(err)
	}
	gone := nextEvent(t, bob, "camera unpublished", func(m *signal.Message) bool { return m.Type == signal.TypeTrackUnpublished })
	if gone.Track.Participant != ada.ID() || gone.Track.Source != signal.SourceCamera {
		t.Errorf("unpublished %+v, want ada's camera", gone.Track)
	}
	for _, tr := range bob.Tracks() {
		if tr.ID == gone.Track.ID {
			t.Errorf("bob still lists the unpublished track %+v", tr)
		}
	}

	if err := ada.Leave(); err != nil {
		t.Fatalf("leave: %v", err)
	}
	nextEvent(t, bob, "ada leaves", func(m *signal.Message) bool {
		return m.Type == signal.TypeParticipantLeft && m.Participant.ID == ada.ID()
	})
	select {
	case <-ada.Done():
	default:
		t.Error("Leave returned before the peer was done")
	}
	if _, open := <-ada.Events(); open {
		t.Error("events still open after Leave")
	}
	if _, err := ada.Publish(ctx, signal.SourceMicrophone, audio.Track()); !errors.Is(err, client.ErrClosed) {
		t.Errorf("publish after leave: %v, want ErrClosed", err)
	}
	if err := ada.Leave(); err != nil {
		t.Errorf("second leave: %v", err)
	}
	if _, err := bob.Publish(ctx, signal.SourceCamera); !errors.Is(err, client.ErrNoTrack) {
		t.Errorf("publish of nothing: %v, want ErrNoTrack", err)
	}
}

// TestSimulcast: three layers published on one transceiver and stamped
// with mid and rid reach a subscriber, whose subscriptions cap and pause
// what the server forwards.
func TestSimulcast(t *testing.T) {
	_, url := testserver.Start(t, room.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := newReceived()
	viewer := join(t, ctx, url, "s", "viewer", func(p *client.Params) { p.OnTrack = got.onTrack })
	var video *clip.VideoSource
	pub := join(t, ctx, url, "s", "presenter", func(p *client.Params) {
		p.OnKeyframeRequest = func(string) { video.RequestKeyframe() }
	})
	video, err := clip.NewVideoSource("cam", "presenter", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pub.Publish(ctx, signal.SourceCamera, video.Tracks()...)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pub.NewStamper(sender)
	if err != nil {
		t.Fatal(err)
	}
	video.SetStamper(st)
	play(t, video.Run)
	got.waitFor(t, "the viewer receives the simulcast camera", func(packets map[string]int, info map[string]signal.Track) bool {
		for id, tr := range info {
			if tr.Participant == pub.ID() && tr.Source == signal.SourceCamera && packets[id] >= 60 {
				return true
			}
		}
		return false
	})

	// The viewer caps the camera at the low layer, then pauses it; the
	// server says so in its layers events.
	var camID string
	for _, tr := range viewer.Tracks() {
		if tr.Source == signal.SourceCamera {
			camID = tr.ID
		}
	}
	if err := viewer.Subscribe(ctx, signal.Subscription{TrackID: camID, MaxLayer: "low"}); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, viewer, "forwarding the low layer", func(m *signal.Message) bool {
		for _, d := range m.Decisions {
			if d.TrackID == camID && d.Current == "low" && d.Target == "low" {
				return true
			}
		}
		return false
	})
	if err := viewer.Subscribe(ctx, signal.Subscription{TrackID: camID, Paused: true}); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, viewer, "paused", func(m *signal.Message) bool {
		for _, d := range m.Decisions {
			if d.TrackID == camID && d.Paused {
				return true
			}
		}
		return false
	})
	var serr *signal.Error
	if err := viewer.Subscribe(ctx, signal.Subscription{TrackID: "no-such-track"}); !errors.As(err, &serr) || serr.Code != signal.CodeUnknownTrack {
		t.Errorf("subscribing to an unknown track: %v, want %s", err, signal.CodeUnknownTrack)
	}
	if err := viewer.Leave(); err != nil {
		t.Fatal(err)
	}
	if err := viewer.Subscribe(ctx, signal.Subscription{TrackID: camID}); !errors.Is(err, client.ErrClosed) {
		t.Errorf("subscribe after leave: %v, want ErrClosed", err)
	}
}

// TestRefusals: the server's refusals come back as its *signal.Error, and
// a server that is not there fails the join at once.
func TestRefusals(t *testing.T) {
	_, url := testserver.Start(t, room.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var serr *signal.Error
	if _, err := client.Join(ctx, client.Params{URL: url, Room: "no/such room", Name: "x", API: loopbackAPI(t)}); !errors.As(err, &serr) || serr.Code != signal.CodeInvalidRoom {
		t.Errorf("join of a bad room name: %v, want %s", err, signal.CodeInvalidRoom)
	}
	join(t, ctx, url, "aula", "prof", func(p *client.Params) { p.Lecture = true })
	viewer := join(t, ctx, url, "aula", "viewer", func(p *client.Params) { p.Role = signal.RoleViewer })
	audio, err := clip.NewAudioSource("mic", "viewer")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.Publish(ctx, signal.SourceMicrophone, audio.Track()); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Errorf("a viewer publishing: %v, want %s", err, signal.CodeForbidden)
	}
	if _, err := client.Join(ctx, client.Params{URL: "http://127.0.0.1:1", Room: "r", Name: "x", API: loopbackAPI(t)}); err == nil {
		t.Error("joined a server that is not there")
	}
	if _, err := client.Join(ctx, client.Params{URL: "ftp://127.0.0.1/", Room: "r", Name: "x"}); err == nil {
		t.Error("joined over ftp")
	}
}
