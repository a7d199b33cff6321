package room

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// The conference's rules tested through the seams of media.go, with
// hand-written fakes of a track and a media connection: no pion, no
// network. The end-to-end tests (package room_test) use the real ones.

// fakeUp is a published track.
type fakeUp struct {
	info sfu.TrackInfo

	mu      sync.Mutex
	blocked bool
	loud    int
	onClose []func()
}

func (u *fakeUp) Info() sfu.TrackInfo { return u.info }
func (u *fakeUp) Layers() []int       { return []int{0} }

func (u *fakeUp) SetBlocked(b bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.blocked = b
}

func (u *fakeUp) TakeLoudness() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.loud
}

func (u *fakeUp) OnClose(f func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.onClose = append(u.onClose, f)
}

func (u *fakeUp) isBlocked() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.blocked
}

// end ends the track, as its publisher leaving would.
func (u *fakeUp) end() {
	u.mu.Lock()
	fs := u.onClose
	u.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// fakePeer is a media connection that records what it was asked.
type fakePeer struct {
	mu         sync.Mutex
	subscribed []sfu.TrackID
	stopped    bool
}

func (p *fakePeer) Subscribe(id sfu.TrackID) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subscribed = append(p.subscribed, id)
	return nil
}

func (p *fakePeer) Unsubscribe(id sfu.TrackID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subscribed = slices.DeleteFunc(p.subscribed, func(s sfu.TrackID) bool { return s == id })
}

func (p *fakePeer) receives() []sfu.TrackID {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.subscribed)
}

func (p *fakePeer) SetLimits([]sfu.Limit) error { return nil }
func (p *fakePeer) Decisions() []sfu.Decision   { return nil }
func (p *fakePeer) HandleOffer(string, map[string]sfu.Source, func(string)) error {
	return nil
}
func (p *fakePeer) HandleAnswer(string) error                  { return nil }
func (p *fakePeer) AddCandidate(webrtc.ICECandidateInit) error { return nil }
func (p *fakePeer) AnswerWhole(context.Context, string, []sfu.TrackID) (string, error) {
	return "", nil
}
func (p *fakePeer) StopPublishing() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
}
func (p *fakePeer) Close() error { return nil }

// outbox keeps the messages sent to a participant.
type outbox struct {
	mu   sync.Mutex
	msgs []*signal.Message
}

func (o *outbox) Send(m *signal.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, m)
	return nil
}

func (o *outbox) of(typ string) []*signal.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*signal.Message
	for _, m := range o.msgs {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// testRoom is a room of a manager without a media plane.
func testRoom(t *testing.T) *Room {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	cfg := Config{Logger: slog.New(slog.DiscardHandler)}
	cfg.setDefaults()
	m := &Manager{cfg: cfg, log: cfg.Logger, rooms: map[string]*Room{}}
	r := newRoom(m, "hall")
	t.Cleanup(func() {
		r.close()
		goleak.VerifyNone(t, ignore)
	})
	return r
}

// enter adds a participant with fakes for its connections.
func enter(t *testing.T, r *Room, id ParticipantID, role access.Role) (*participant, *fakePeer, *outbox) {
	t.Helper()
	perms, _ := role.Permissions()
	peer, out := &fakePeer{}, &outbox{}
	p := &participant{id: id, name: string(id), role: role, perms: perms, peer: peer, out: out,
		log: r.log.With("participant", string(id)), kick: func(string, string) {}}
	if err := r.add(p); err != nil {
		t.Fatal(err)
	}
	r.welcome(p, "", nil)
	return p, peer, out
}

func track(id sfu.TrackID, kind webrtc.RTPCodecType, source sfu.Source) *fakeUp {
	return &fakeUp{info: sfu.TrackInfo{ID: id, Kind: kind, Source: source, Codec: "x/y", MSID: "msid-" + string(id)}}
}

// A track reaches every member but its owner, those who join later too,
// and leaves them all when it ends.
func TestTracksReachEveryOtherMember(t *testing.T) {
	r := testRoom(t)
	ann, annPeer, _ := enter(t, r, "ann", access.Speaker)
	_, bobPeer, bobOut := enter(t, r, "bob", access.Speaker)
	mic := track("T1", webrtc.RTPCodecTypeAudio, sfu.SourceMicrophone)
	r.publish(ann, mic)
	_, cyPeer, _ := enter(t, r, "cy", access.Viewer)
	if got := bobPeer.receives(); !slices.Equal(got, []sfu.TrackID{"T1"}) {
		t.Errorf("bob receives %v, want T1", got)
	}
	if got := cyPeer.receives(); !slices.Equal(got, []sfu.TrackID{"T1"}) {
		t.Errorf("cy, who joined later, receives %v, want T1", got)
	}
	if got := annPeer.receives(); len(got) != 0 {
		t.Errorf("ann receives her own track: %v", got)
	}
	pub := bobOut.of(signal.TypeTrackPublished)
	if len(pub) != 1 || pub[0].Track.ID != "T1" || pub[0].Track.Participant != "ann" || pub[0].Track.Source != "microphone" {
		t.Fatalf("bob was told %+v", pub)
	}
	mic.end()
	if len(bobPeer.receives())+len(cyPeer.receives()) != 0 {
		t.Errorf("the ended track is still forwarded: bob %v, cy %v", bobPeer.receives(), cyPeer.receives())
	}
	if len(bobOut.of(signal.TypeTrackUnpublished)) != 1 {
		t.Error("bob was not told the track ended")
	}
}

// A moderator's mute stops the track for everyone and only its owner may
// lift it; a speaker may not mute another's track.
func TestModeratorMute(t *testing.T) {
	r := testRoom(t)
	ann, _, annOut := enter(t, r, "ann", access.Speaker)
	bob, _, _ := enter(t, r, "bob", access.Speaker)
	mod, _, _ := enter(t, r, "mod", access.Moderator)
	cam := track("T1", webrtc.RTPCodecTypeVideo, sfu.SourceCamera)
	r.publish(ann, cam)
	if e := r.setMuted(bob, "T1", true); e == nil || e.Code != signal.CodeForbidden || cam.isBlocked() {
		t.Fatalf("a speaker muting another's track: %v", e)
	}
	if e := r.setMuted(mod, "T1", true); e != nil || !cam.isBlocked() {
		t.Fatalf("the moderator's mute: %v, blocked %v", e, cam.isBlocked())
	}
	upd := annOut.of(signal.TypeTrackUpdated)
	if len(upd) != 1 || !upd[0].Track.Muted || upd[0].Track.MutedBy != "mod" {
		t.Fatalf("the owner was told %+v", upd)
	}
	if e := r.setMuted(mod, "T1", false); e == nil || !cam.isBlocked() {
		t.Fatalf("the moderator unmuting: %v", e)
	}
	if e := r.setMuted(ann, "msid-T1", false); e != nil || cam.isBlocked() {
		t.Fatalf("the owner unmuting by her own track id: %v, blocked %v", e, cam.isBlocked())
	}
	if e := r.setMuted(ann, "T9", true); e == nil || e.Code != signal.CodeUnknownTrack {
		t.Fatalf("muting an unknown track: %v", e)
	}
}

// A WHEP viewer gets the audio and the screen share of the first member
// publishing video, or the camera when it asks, or a named member's.
func TestWatchTarget(t *testing.T) {
	r := testRoom(t)
	ann, _, _ := enter(t, r, "ann", access.Speaker)
	bob, _, _ := enter(t, r, "bob", access.Speaker)
	r.publish(ann, track("A-mic", webrtc.RTPCodecTypeAudio, sfu.SourceMicrophone))
	if owner, _ := r.watchTargetLocked("", ""); owner != nil {
		t.Fatalf("a target without video: %s", owner.id)
	}
	r.publish(bob, track("B-cam", webrtc.RTPCodecTypeVideo, sfu.SourceCamera))
	r.publish(ann, track("A-cam", webrtc.RTPCodecTypeVideo, sfu.SourceCamera))
	r.publish(ann, track("A-screen", webrtc.RTPCodecTypeVideo, sfu.SourceScreen))
	for _, c := range []struct {
		id     ParticipantID
		source sfu.Source
		want   []sfu.TrackID
	}{
		{"", "", []sfu.TrackID{"A-mic", "A-screen"}},
		{"", sfu.SourceCamera, []sfu.TrackID{"A-mic", "A-cam"}},
		{"bob", "", []sfu.TrackID{"B-cam"}},
		{"bob", sfu.SourceScreen, []sfu.TrackID{"B-cam"}},
	} {
		r.mu.Lock()
		_, got := r.watchTargetLocked(c.id, c.source)
		r.mu.Unlock()
		if !slices.Equal(got, c.want) {
			t.Errorf("watching %q (%s): %v, want %v", c.id, c.source, got, c.want)
		}
	}
}

// The loudest unmuted microphone is announced as the speaker once it has
// held for two intervals.
func TestSpeakerAnnounced(t *testing.T) {
	r := testRoom(t)
	r.close() // the room's own detector stays out of the way
	ann, _, _ := enter(t, r, "ann", access.Speaker)
	bob, _, bobOut := enter(t, r, "bob", access.Speaker)
	loud, quiet := track("A", webrtc.RTPCodecTypeAudio, sfu.SourceMicrophone), track("B", webrtc.RTPCodecTypeAudio, sfu.SourceMicrophone)
	loud.loud, quiet.loud = 110, 90
	r.publish(ann, loud)
	r.publish(bob, quiet)
	mod, _, _ := enter(t, r, "mod", access.Moderator)
	if e := r.setMuted(mod, "A", true); e != nil {
		t.Fatal(e)
	}
	var det speakerDetector
	for range speakerHold {
		r.observeSpeakers(&det)
	}
	if r.Speaker() != "bob" {
		t.Fatalf("speaker %q, want bob: ann's microphone is muted", r.Speaker())
	}
	if e := r.setMuted(ann, "A", false); e != nil {
		t.Fatal(e)
	}
	for range speakerHold {
		r.observeSpeakers(&det)
	}
	got := bobOut.of(signal.TypeActiveSpeaker)
	if r.Speaker() != "ann" || len(got) != 2 || got[1].Speaker != "ann" {
		t.Fatalf("speaker %q, announcements %d: want ann, announced after bob", r.Speaker(), len(got))
	}
}

// A moderator's demotion stops the speaker's publishing and tells it its
// new permissions; in a lecture it leaves the stage for the audience.
func TestDemotionStopsPublishing(t *testing.T) {
	r := testRoom(t)
	r.lecture = true
	ann, annPeer, annOut := enter(t, r, "ann", access.Speaker)
	bob, _, _ := enter(t, r, "bob", access.Speaker)
	mod, _, modOut := enter(t, r, "mod", access.Moderator)
	if e := r.promote(bob, "ann", access.Viewer); e == nil || e.Code != signal.CodeForbidden {
		t.Fatalf("a speaker demoting another: %v", e)
	}
	if e := r.promote(mod, "ann", access.Viewer); e != nil {
		t.Fatal(e)
	}
	annPeer.mu.Lock()
	stopped := annPeer.stopped
	annPeer.mu.Unlock()
	perms := annOut.of(signal.TypePermissions)
	if !stopped || len(perms) != 1 || perms[0].Role != signal.RoleViewer || perms[0].Permissions.Publish {
		t.Fatalf("demoted: publishing stopped %v, told %+v", stopped, perms)
	}
	if left := modOut.of(signal.TypeParticipantLeft); len(left) != 1 || left[0].Participant.ID != "ann" {
		t.Fatalf("the others were told %+v, want ann leaving the stage", left)
	}
	if !r.audienceLocked(ann) {
		t.Fatal("the demoted speaker is not in the audience")
	}
}
