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
	recv  *sfu.Receiver
	owner *participant
	muted bool
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
	}
}

// Room is one conference: its members and the tracks they publish. Every
// member subscribes to every track of the others.
type Room struct {
	name string
	mgr  *Manager

	mu           sync.Mutex
	participants map[string]*participant
	order        []string // join order, for stable member lists
	tracks       map[string]*publishedTrack
	speaker      string

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
	if len(r.participants) >= r.mgr.cfg.MaxParticipants {
		return ErrRoomFull
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
		if p, ok := r.participants[id]; ok {
			out = append(out, signal.Participant{ID: p.id, Name: p.name})
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
	p.send(&signal.Message{
		Type: signal.TypeWelcome, ID: id, Room: r.name,
		Participant: &signal.Participant{ID: p.id, Name: p.name},
		Members:     r.membersLocked(p.id),
		Tracks:      r.tracksLocked(p.id),
		ICEServers:  iceServers,
	})
	r.broadcastLocked(&signal.Message{Type: signal.TypeParticipantJoined, Participant: &signal.Participant{ID: p.id, Name: p.name}}, p.id)
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
	r.mu.Unlock()
	for _, o := range others {
		o.unsubscribe(recv)
	}
}

// setMuted records a publisher's mute state and tells the others.
func (r *Room) setMuted(p *participant, trackID string, muted bool) bool {
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
	if !ok || t.owner != p {
		return false
	}
	t.muted = muted
	info := t.info()
	r.broadcastLocked(&signal.Message{Type: signal.TypeTrackUpdated, Track: &info}, p.id)
	return true
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
	r.broadcastLocked(&signal.Message{Type: signal.TypeParticipantLeft, Participant: &signal.Participant{ID: p.id, Name: p.name}}, p.id)
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
