package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/confab-sfu/confab/signal/client/clip"
	"github.com/pion/webrtc/v4"
)

// TestWHIPToWHEP: a WHIP publisher's audio and video reach a WHEP viewer,
// the viewer's arrival asks the publisher for a keyframe, and Close ends
// the publisher's session on the server.
func TestWHIPToWHEP(t *testing.T) {
	_, url := testserver.Start(t, room.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	audio, err := clip.NewAudioSource("mic", "obs")
	if err != nil {
		t.Fatal(err)
	}
	video, err := clip.NewVideoSource("cam", "obs", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	pub, senders, err := client.PublishWHIP(ctx, loopbackAPI(t), url, "show", "", []webrtc.TrackLocal{audio.Track()}, video.Tracks())
	if err != nil {
		t.Fatal(err)
	}
	if len(senders) != 2 {
		t.Fatalf("%d senders for two groups", len(senders))
	}
	st, err := pub.NewStamper(senders[1])
	if err != nil {
		t.Fatal(err)
	}
	video.SetStamper(st)
	keyframes := make(chan *webrtc.RTPSender, 16)
	pub.OnKeyframeRequest(func(s *webrtc.RTPSender) {
		video.RequestKeyframe()
		select {
		case keyframes <- s:
		default:
		}
	})
	play(t, audio.Run)
	play(t, video.Run)

	// The room has the publisher's tracks once their first packets arrived;
	// until then a viewer is told 404, and asks again.
	got := newReceived()
	var viewer *client.HTTPSession
	for viewer == nil {
		s, err := client.Watch(ctx, loopbackAPI(t), url, "show", "", got.onTrack)
		var herr *client.HTTPStatusError
		switch {
		case err == nil:
			viewer = s
		case !errors.As(err, &herr) || herr.Status != http.StatusNotFound:
			t.Fatal(err)
		default:
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				t.Fatalf("nothing published: %v", err)
			}
		}
	}
	got.waitFor(t, "the WHEP viewer receives audio and video", func(packets map[string]int, info map[string]signal.Track) bool {
		kinds := map[string]bool{}
		for id, tr := range info {
			if packets[id] >= 30 {
				kinds[tr.Kind] = true
			}
		}
		return kinds["audio"] && kinds["video"]
	})
	select {
	case s := <-keyframes:
		if s != senders[1] {
			t.Error("a keyframe request for the audio sender")
		}
	case <-time.After(wait):
		t.Error("no keyframe request reached the WHIP publisher")
	}
	if err := viewer.Close(); err != nil {
		t.Errorf("close the viewer: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Errorf("close the publisher: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	// The publisher's session is gone: nothing to watch any more.
	var herr *client.HTTPStatusError
	if s, err := client.Watch(ctx, loopbackAPI(t), url, "show", "", nil); !errors.As(err, &herr) || herr.Status != http.StatusNotFound {
		if s != nil {
			_ = s.Close()
		}
		t.Errorf("watching after the publisher's DELETE: %v, want 404", err)
	}
}

// fakeWHIP is a WHIP endpoint that answers with a real PeerConnection and
// a configurable Location, and records DELETEs.
type fakeWHIP struct {
	t        *testing.T
	api      *webrtc.API
	location string // the Location header to send ("" for none)
	answer   string // a fixed answer instead of a real one
	status   int    // of POST, 201 unless set

	mu      sync.Mutex
	pcs     []*webrtc.PeerConnection
	deletes []*http.Request
}

func (f *fakeWHIP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		f.mu.Lock()
		f.deletes = append(f.deletes, r)
		f.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	if f.status != 0 {
		http.Error(w, "refused here", f.status)
		return
	}
	answer := f.answer
	if answer == "" {
		answer = f.realAnswer(r)
	}
	if f.location != "" {
		w.Header().Set("Location", f.location)
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

func (f *fakeWHIP) realAnswer(r *http.Request) string {
	offer, _ := io.ReadAll(r.Body)
	pc, err := f.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		f.t.Error(err)
		return ""
	}
	f.mu.Lock()
	f.pcs = append(f.pcs, pc)
	f.mu.Unlock()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		f.t.Error(err)
		return ""
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		f.t.Error(err)
		return ""
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		f.t.Error(err)
		return ""
	}
	<-gathered
	return pc.LocalDescription().SDP
}

func (f *fakeWHIP) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, pc := range f.pcs {
		_ = pc.Close()
	}
}

func (f *fakeWHIP) deleted() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.deletes...)
}

func startFake(t *testing.T, f *fakeWHIP) string {
	f.t, f.api = t, loopbackAPI(t)
	srv := httptest.NewServer(f)
	t.Cleanup(func() { srv.Close(); f.close() })
	return srv.URL
}

// TestCloseDeletesTheLocationWithTheToken: Close sends DELETE to exactly
// the Location the server gave, resolved against the endpoint, with the
// bearer token the session was created with (RFC 9725 sections 4.2, 4.4).
func TestCloseDeletesTheLocationWithTheToken(t *testing.T) {
	for _, c := range []struct {
		name, location, token string
		want                  string // the DELETE's request URI
	}{
		{"relative with query", "sessions/a%20b?x=1", "secret", "/whip/sessions/a%20b?x=1"},
		{"absolute path", "/resource/s1", "secret", "/resource/s1"},
		{"dot segments", "../other/s2", "secret", "/other/s2"},
		{"no token", "/resource/s3", "", "/resource/s3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeWHIP{location: c.location}
			base := startFake(t, f)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			audio, err := clip.NewAudioSource("mic", "obs")
			if err != nil {
				t.Fatal(err)
			}
			s, _, err := client.PublishWHIP(ctx, loopbackAPI(t), base, "room", c.token, []webrtc.TrackLocal{audio.Track()})
			if err != nil {
				t.Fatal(err)
			}
			if len(f.deleted()) != 0 {
				t.Fatal("deleted before Close")
			}
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			d := f.deleted()
			if len(d) != 1 {
				t.Fatalf("%d DELETEs, want 1", len(d))
			}
			if d[0].RequestURI != c.want {
				t.Errorf("DELETE %s, want %s", d[0].RequestURI, c.want)
			}
			wantAuth := ""
			if c.token != "" {
				wantAuth = "Bearer " + c.token
			}
			if got := d[0].Header.Get("Authorization"); got != wantAuth {
				t.Errorf("DELETE with Authorization %q, want %q", got, wantAuth)
			}
			if s.Location() != base+c.want {
				t.Errorf("Location() %s, want %s", s.Location(), base+c.want)
			}
		})
	}
}

// TestHTTPRefusals: a refusal carries its status and body, a session
// without a Location is an error, and a session whose answer cannot be
// used is deleted again.
func TestHTTPRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	watch := func(base string) error {
		s, err := client.Watch(ctx, loopbackAPI(t), base, "room", "tok", nil)
		if err == nil {
			_ = s.Close()
		}
		return err
	}
	var herr *client.HTTPStatusError
	if err := watch(startFake(t, &fakeWHIP{status: http.StatusForbidden})); !errors.As(err, &herr) || herr.Status != http.StatusForbidden || herr.Body != "refused here\n" {
		t.Errorf("a refusal: %v, want 403 with its body", err)
	}
	if err := watch(startFake(t, &fakeWHIP{})); !errors.Is(err, client.ErrNoLocation) {
		t.Errorf("201 without a Location: %v, want ErrNoLocation", err)
	}
	bad := &fakeWHIP{location: "/s/1", answer: "not sdp"}
	if err := watch(startFake(t, bad)); err == nil {
		t.Error("an answer that is not SDP was accepted")
	}
	if d := bad.deleted(); len(d) != 1 || d[0].RequestURI != "/s/1" || d[0].Header.Get("Authorization") != "Bearer tok" {
		t.Errorf("the unusable session was not deleted: %d DELETEs", len(d))
	}
	if _, _, err := client.PublishWHIP(ctx, loopbackAPI(t), "http://127.0.0.1:1", "room", "", []webrtc.TrackLocal{}); !errors.Is(err, client.ErrNoTrack) {
		t.Errorf("an empty group: %v, want ErrNoTrack", err)
	}
}
