package room_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// startServer runs a whole server on 127.0.0.1 with loopback-only ICE.
func startServer(t *testing.T, cfg room.Config) (*room.Manager, string) {
	t.Helper()
	return testserver.Start(t, cfg)
}

// testPeer is a real pion participant plus what it received.
type testPeer struct {
	*client.Peer
	rec *recorder

	mu     sync.Mutex
	events []*signal.Message
}

// collect keeps every room event the peer sees.
func (p *testPeer) collect() {
	for m := range p.Events() {
		p.mu.Lock()
		p.events = append(p.events, m)
		p.mu.Unlock()
	}
}

// saw reports whether an event of type typ matching f arrived.
func (p *testPeer) saw(typ string, f func(*signal.Message) bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.events {
		if m.Type == typ && (f == nil || f(m)) {
			return true
		}
	}
	return false
}

// join connects a participant to room.
func join(t *testing.T, ctx context.Context, url, roomName, name string) *testPeer {
	t.Helper()
	return joinWithToken(t, ctx, url, roomName, name, "")
}

// joinWithToken connects a participant presenting an access token.
func joinWithToken(t *testing.T, ctx context.Context, url, roomName, name, token string) *testPeer {
	t.Helper()
	return joinWith(t, ctx, url, roomName, name, client.APIOptions{Loopback: true},
		func(o *client.Params) { o.Token = token })
}

// joinWith connects a participant with its own network options and peer
// options (a relay-only or TCP-only client, say).
func joinWith(t *testing.T, ctx context.Context, url, roomName, name string, apiOpts client.APIOptions, tweak func(*client.Params)) *testPeer {
	t.Helper()
	api, err := client.NewAPI(apiOpts)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	o := client.Params{URL: url, Room: roomName, Name: name, API: api, OnTrack: rec.onTrack}
	if tweak != nil {
		tweak(&o)
	}
	p, err := client.Join(ctx, o)
	if err != nil {
		t.Fatalf("%s joins %s: %v", name, roomName, err)
	}
	t.Cleanup(func() { _ = p.Leave() })
	tp := &testPeer{Peer: p, rec: rec}
	go tp.collect()
	return tp
}

// mediaBothWays has a and b publish audio and video and waits until each
// receives the other's intact.
func mediaBothWays(t *testing.T, ctx context.Context, a, b *testPeer, what string) {
	t.Helper()
	fromA := publish(t, ctx, a, "a", "audio", "video")
	fromB := publish(t, ctx, b, "b", "audio", "video")
	wait.Until(t, 30*time.Second, "media both ways "+what, func() (bool, string) {
		if ok, why := checkTracks(b, 30, map[string][]*source{a.ID(): fromA}); !ok {
			return false, why
		}
		return checkTracks(a, 30, map[string][]*source{b.ID(): fromB})
	})
}

// received is what one subscriber got of one track.
type received struct {
	publisher string
	kind      string
	source    string
	codec     string
	payloads  [][]byte
	seqs      []uint16
	ended     bool
	at        time.Time // when the track arrived
}

type recorder struct {
	mu     sync.Mutex
	tracks map[string]*received // by server track id
	wg     sync.WaitGroup
}

func newRecorder() *recorder { return &recorder{tracks: map[string]*received{}} }

func (r *recorder) onTrack(rt *client.RemoteTrack) {
	r.mu.Lock()
	rc := &received{publisher: rt.Info.Participant, kind: rt.Info.Kind, source: rt.Info.Source, codec: rt.Track.Codec().MimeType,
		at: time.Now()}
	r.tracks[rt.Info.ID] = rc
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 1500)
		var pkt rtp.Packet
		for {
			n, _, err := rt.Track.Read(buf)
			if err != nil {
				r.mu.Lock()
				rc.ended = true
				r.mu.Unlock()
				return
			}
			if pkt.Unmarshal(buf[:n]) != nil {
				continue
			}
			if pkt.Padding && len(pkt.Payload) == 0 {
				continue // a bandwidth probe: no media
			}
			r.mu.Lock()
			rc.payloads = append(rc.payloads, append([]byte(nil), pkt.Payload...))
			rc.seqs = append(rc.seqs, pkt.SequenceNumber)
			r.mu.Unlock()
		}
	}()
}

// snapshot returns track id -> (publisher, kind, source, packets).
func (r *recorder) snapshot() map[string]received {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]received{}
	for id, rc := range r.tracks {
		cp := *rc
		cp.payloads = append([][]byte(nil), rc.payloads...)
		cp.seqs = append([]uint16(nil), rc.seqs...)
		out[id] = cp
	}
	return out
}

// packets is how many packets arrived, of every track.
func (r *recorder) packets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rc := range r.tracks {
		n += len(rc.payloads)
	}
	return n
}

// source publishes synthetic media whose every payload is unique and
// remembered, so subscribers can check they got exactly what was sent.
type source struct {
	track *webrtc.TrackLocalStaticRTP
	kind  string
	name  string

	mu   sync.Mutex
	sent map[string]bool
	stop chan struct{}
	done chan struct{}
}

func newSource(t *testing.T, kind, name string) *source {
	t.Helper()
	var codec webrtc.RTPCodecCapability
	switch kind {
	case "audio":
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	case "h264":
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	default:
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	}
	tr, err := webrtc.NewTrackLocalStaticRTP(codec, name+"-"+kind, name+"-stream")
	if err != nil {
		t.Fatal(err)
	}
	return &source{track: tr, kind: kind, name: name, sent: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
}

// payload builds packet i: a VP8 descriptor (a keyframe every 10th frame,
// so subscribers can start) or Opus-like bytes, tagged with the sender.
func (s *source) payload(i int) []byte {
	tag := []byte(fmt.Sprintf("%s/%s/%06d/", s.name, s.kind, i))
	if s.kind == "audio" {
		return append(tag, make([]byte, 60)...)
	}
	if s.kind == "h264" {
		// A single NAL unit: an IDR slice every 10th frame, else non-IDR.
		nal := byte(0x41)
		if i%10 == 0 {
			nal = 0x65
		}
		return append(append([]byte{nal}, tag...), make([]byte, 300)...)
	}
	pid := uint16(i) & 0x7fff
	p := []byte{0x90, 0x80, 0x80 | byte(pid>>8), byte(pid)}
	if i%10 == 0 {
		p = append(p, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00)
	} else {
		p = append(p, 0x01, 0x00, 0x00)
	}
	p = append(p, tag...)
	return append(p, make([]byte, 300)...)
}

// run sends a packet every 20 ms until stopped (bounded by ctx).
func (s *source) run(ctx context.Context) {
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		ts := uint32(0)
		step := uint32(960)
		if s.kind != "audio" {
			step = 1800
		}
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-tick.C:
			}
			pl := s.payload(i)
			s.mu.Lock()
			s.sent[string(pl)] = true
			s.mu.Unlock()
			_ = s.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: ts}, Payload: pl})
			ts += step
		}
	}()
}

func (s *source) halt() {
	close(s.stop)
	<-s.done
}

func (s *source) wasSent(p []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[string(p)]
}

// publish starts sources of the given kinds on p and returns them.
func publish(t *testing.T, ctx context.Context, p *testPeer, name string, kinds ...string) []*source {
	t.Helper()
	var out []*source
	for _, k := range kinds {
		s := newSource(t, k, name)
		src := "camera"
		if k == "audio" {
			src = "microphone"
		}
		if _, err := p.Publish(ctx, src, s.track); err != nil {
			t.Fatalf("%s publishes %s: %v", name, k, err)
		}
		s.run(ctx)
		t.Cleanup(func() {
			select {
			case <-s.stop:
			default:
				s.halt()
			}
		})
		out = append(out, s)
	}
	return out
}
