package room

import (
	"sort"
	"sync"
	"time"

	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// publishedTrack is a track in a room with its announced metadata.
type publishedTrack struct {
	recv    *sfu.Receiver
	owner   *participant
	muted   bool
	mutedBy string // the moderator whose mute stopped forwarding
}

func (t *publishedTrack) info() signal.Track {
	return signal.Track{
		ID:          t.recv.ID(),
		Participant: t.owner.id,
		Kind:        t.recv.Kind().String(),
		StreamID:    t.recv.StreamID(),
		Source:      t.recv.Source(),
		Codec:       t.recv.Codec().MimeType,
		Layers:      t.recv.Layers(),
		Muted:       t.muted,
		MutedBy:     t.mutedBy,
	}
}

// Room is one conference: its members and the tracks they publish. Every
// member subscribes to every track of the others.
type Room struct {
	name string
	mgr  *Manager

	mu              sync.Mutex
	participants    map[string]*participant
	order           []string // join order, for stable member lists
	tracks          map[string]*publishedTrack
	speaker         string
	removed         map[string]bool                  // identities a moderator removed, refused while the room lives
	roles           map[string]string                // identity -> role a moderator gave, kept while the room lives
	watchers        map[*httpSession][]*sfu.Receiver // WHEP viewers and what they receive
	lecture         bool                             // see lecture.go
	hands           map[string]bool                  // raised hands of the audience
	audienceChatOff bool                             // a moderator turned the audience's chat off
	audienceTimer   *time.Timer
	lastAudience    time.Time
	videoCodec      string // what publishers send; see codec.go

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func newRoom(m *Manager, name string) *Room {
	r := &Room{name: name, mgr: m, participants: map[string]*participant{}, tracks: map[string]*publishedTrack{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go r.detectSpeakers()
	return r
}

// close stops the room's goroutine; the room is empty by then.
func (r *Room) close() {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
}

// detectSpeakers announces the dominant speaker until the room closes.
func (r *Room) detectSpeakers() {
	defer close(r.done)
	t := time.NewTicker(speakerInterval)
	defer t.Stop()
	var det speakerDetector
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		loud := map[string]int{}
		for _, tr := range r.tracks {
			if tr.recv.Kind() == webrtc.RTPCodecTypeAudio && !tr.muted {
				if v := tr.recv.TakeLoudness(); v > loud[tr.owner.id] {
					loud[tr.owner.id] = v
				}
			}
		}
		if det.current != "" {
			if _, ok := r.participants[det.current]; !ok {
				det.forget(det.current)
			}
		}
		if id := det.observe(loud); id != "" {
			r.speaker = id
			r.broadcastLocked(&signal.Message{Type: signal.TypeActiveSpeaker, Speaker: id}, "")
		}
		r.mu.Unlock()
	}
}

// Speaker returns the current dominant speaker's id, or "".
func (r *Room) Speaker() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.speaker
}

// Name is the room's name.
func (r *Room) Name() string { return r.name }

func (r *Room) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.participants) == 0
}

func (r *Room) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.participants)
}

// add admits p if there is room.
func (r *Room) add(p *participant) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.identity != "" && r.removed[p.identity] {
		return ErrRemoved
	}
	if len(r.participants) >= r.mgr.cfg.MaxParticipants {
		return ErrRoomFull
	}
	if role, ok := r.roles[p.identity]; ok && p.identity != "" {
		// A moderator's promotion or demotion outlives a reconnect, and
		// holds for every way in: a WHIP publisher demoted to viewer may
		// not publish again with its old token.
		perms, _ := RolePermissions(role)
		switch {
		case p.publishOnly && !perms.Publish:
			return ErrPublishRevoked
		case p.publishOnly:
			p.setRole(Permissions{Publish: true}, role) // it still only publishes
		default:
			p.setRole(perms, role)
		}
	}
	p.room = r
	r.participants[p.id] = p
	r.order = append(r.order, p.id)
	return nil
}

// Participants returns the members' public descriptions in join order.
func (r *Room) Participants() []signal.Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.membersLocked("")
}

func (r *Room) membersLocked(except string) []signal.Participant {
	out := make([]signal.Participant, 0, len(r.order))
	for _, id := range r.order {
		if id == except {
			continue
		}
		if p, ok := r.participants[id]; ok && !r.audienceLocked(p) {
			out = append(out, p.public())
		}
	}
	return out
}

func (r *Room) tracksLocked(except string) []signal.Track {
	out := make([]signal.Track, 0, len(r.tracks))
	for _, t := range r.tracks {
		if t.owner.id != except {
			out = append(out, t.info())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// welcome completes p's join: p learns the room, the others learn of p, and
// p subscribes to every published track. It runs under the room lock so no
// track published meanwhile is missed or subscribed twice.
func (r *Room) welcome(p *participant, id string, iceServers []signal.ICEServer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recodecLocked(p.id)
	me, perms := p.public(), p.permissions()
	welcome := &signal.Message{
		Type: signal.TypeWelcome, ID: id, Room: r.name,
		Participant: &me,
		Members:     r.membersLocked(p.id),
		Tracks:      r.tracksLocked(p.id),
		ICEServers:  iceServers,
		Permissions: &perms,
		Lecture:     r.lecture,
		Audience:    r.audienceCountLocked(),
		VideoCodec:  r.codec(),
	}
	if r.lecture {
		chat := !r.audienceChatOff
		welcome.AudienceChat = &chat
		if p.permissions().Moderate {
			welcome.Hands = r.handsLocked()
		}
	}
	p.send(welcome)
	if r.audienceLocked(p) {
		r.audienceChangedLocked() // a viewer is counted, not announced
	} else {
		r.broadcastLocked(&signal.Message{Type: signal.TypeParticipantJoined, Participant: &me}, p.id)
	}
	for _, t := range r.tracks {
		if t.owner != p {
			p.subscribe(t.recv)
		}
	}
}

// publish announces a new track of p and subscribes every other member.
func (r *Room) publish(p *participant, recv *sfu.Receiver) {
	r.mu.Lock()
	if _, ok := r.participants[p.id]; !ok {
		r.mu.Unlock()
		return
	}
	t := &publishedTrack{recv: recv, owner: p}
	r.tracks[recv.ID()] = t
	info := t.info()
	r.broadcastLocked(&signal.Message{Type: signal.TypeTrackPublished, Track: &info}, p.id)
	for _, o := range r.participants {
		if o != p {
			o.subscribe(recv)
		}
	}
	r.mu.Unlock()
	recv.OnClose(func() { r.unpublish(recv) })
}

// unpublish removes an ended track from every subscriber.
func (r *Room) unpublish(recv *sfu.Receiver) {
	r.mu.Lock()
	t, ok := r.tracks[recv.ID()]
	if !ok {
		r.mu.Unlock()
		return
	}
	delete(r.tracks, recv.ID())
	info := t.info()
	others := make([]*participant, 0, len(r.participants))
	for _, o := range r.participants {
		if o != t.owner {
			others = append(others, o)
		}
	}
	r.broadcastLocked(&signal.Message{Type: signal.TypeTrackUnpublished, Track: &info}, t.owner.id)
	var watchers []*httpSession
	for w, recvs := range r.watchers {
		for _, rc := range recvs {
			if rc == recv {
				watchers = append(watchers, w)
			}
		}
	}
	r.mu.Unlock()
	for _, o := range others {
		o.unsubscribe(recv)
	}
	for _, w := range watchers {
		w.peer.Unsubscribe(recv)
	}
}

// setMuted records a mute: a publisher's own (announced; the client
// stops sending), or a moderator's of someone else's track, which also stops
// forwarding it to everyone until its owner unmutes it.
func (r *Room) setMuted(p *participant, trackID string, muted bool) *signal.Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tracks[trackID]
	if !ok {
		// The publisher may name the track by its own (msid) id.
		for _, c := range r.tracks {
			if c.owner == p && c.recv.MSID() == trackID {
				t, ok = c, true
				break
			}
		}
	}
	if !ok {
		return signal.Errorf(signal.CodeUnknownTrack, "no track %q in this room", trackID)
	}
	switch {
	case t.owner == p:
		t.muted = muted
		if !muted && t.mutedBy != "" {
			t.mutedBy = ""
			t.recv.SetBlocked(false)
		}
	case !p.permissions().Moderate:
		return signal.Errorf(signal.CodeForbidden, "only a moderator may mute another participant's track")
	case !muted:
		return signal.Errorf(signal.CodeForbidden, "only the owner may unmute a track")
	default:
		t.muted, t.mutedBy = true, p.id
		t.recv.SetBlocked(true)
		r.mgr.log.Info("muted by moderator", "room", r.name, "moderator", p.id, "participant", t.owner.id, "track", t.recv.ID())
	}
	info := t.info()
	// The owner hears of a moderator's mute too: its client shows it.
	except := p.id
	if t.owner != p {
		except = ""
	}
	r.broadcastLocked(&signal.Message{Type: signal.TypeTrackUpdated, Track: &info}, except)
	return nil
}

// removeByModerator disconnects a participant on a moderator's request.
// With tokens, its identity may not come back while the room lives, by
// any way in: every other connection of it, its WHIP publishers and its
// WHEP players are ended too.
func (r *Room) removeByModerator(mod *participant, id string) *signal.Error {
	if !mod.permissions().Moderate {
		return signal.Errorf(signal.CodeForbidden, "only a moderator may remove participants")
	}
	r.mu.Lock()
	target, ok := r.participants[id]
	switch {
	case !ok:
		r.mu.Unlock()
		return signal.Errorf(signal.CodeInvalidField, "no participant %q in this room", id)
	case target == mod || (target.identity != "" && target.identity == mod.identity):
		r.mu.Unlock()
		return signal.Errorf(signal.CodeInvalidField, "to leave, send leave")
	}
	kicked := []*participant{target}
	var watchers []*httpSession
	if target.identity != "" {
		if r.removed == nil {
			r.removed = map[string]bool{}
		}
		r.removed[target.identity] = true
		for _, p := range r.participants {
			if p != target && p.identity == target.identity {
				kicked = append(kicked, p)
			}
		}
		watchers = r.watchersOfLocked(target.identity)
	}
	r.mu.Unlock()
	r.mgr.log.Info("removed by moderator", "room", r.name, "moderator", mod.id, "participant", id,
		"connections", len(kicked), "whep_ended", len(watchers))
	for _, p := range kicked {
		p.kick("removed by a moderator", signal.CodeRemoved)
	}
	for _, w := range watchers {
		w.end("removed by a moderator")
	}
	return nil
}

// remove takes p out of the room and tells the others.
func (r *Room) remove(p *participant) {
	r.mu.Lock()
	if _, ok := r.participants[p.id]; !ok {
		r.mu.Unlock()
		return
	}
	delete(r.participants, p.id)
	for i, id := range r.order {
		if id == p.id {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	left := p.public()
	if r.hands[p.id] {
		delete(r.hands, p.id)
		lowered := false
		r.toModeratorsLocked(&signal.Message{Type: signal.TypeHand, Participant: &left, Raised: &lowered})
	}
	if r.audienceLocked(p) {
		r.audienceChangedLocked()
	} else {
		r.broadcastLocked(&signal.Message{Type: signal.TypeParticipantLeft, Participant: &left}, p.id)
	}
	r.recodecLocked("")
	r.mu.Unlock()
}

// broadcast sends m to every member but except.
func (r *Room) broadcast(m *signal.Message, except string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broadcastLocked(m, except)
}

func (r *Room) broadcastLocked(m *signal.Message, except string) {
	for id, p := range r.participants {
		if id != except {
			p.send(m)
		}
	}
}
