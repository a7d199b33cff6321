package room

import (
	"sort"
	"time"

	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// publishedTrack is a track in a room with its announced metadata.
type publishedTrack struct {
	up      UpTrack
	info    sfu.TrackInfo
	owner   *participant
	muted   bool
	mutedBy ParticipantID // the moderator whose mute stopped forwarding
}

// wire is how members are told of the track.
func (t *publishedTrack) wire() signal.Track {
	var layers []string
	for _, l := range t.up.Layers() {
		layers = append(layers, signal.LayerName(l))
	}
	return signal.Track{
		ID:          string(t.info.ID),
		Participant: string(t.owner.id),
		Kind:        t.info.Kind.String(),
		StreamID:    t.info.StreamID,
		Source:      string(t.info.Source),
		Codec:       t.info.Codec,
		Layers:      layers,
		Muted:       t.muted,
		MutedBy:     string(t.mutedBy),
	}
}

func (r *Room) tracksLocked(except ParticipantID) []signal.Track {
	out := make([]signal.Track, 0, len(r.tracks))
	for _, t := range r.tracks {
		if t.owner.id != except {
			out = append(out, t.wire())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// publish announces a new track of p and subscribes every other member.
func (r *Room) publish(p *participant, up UpTrack) {
	info := up.Info()
	r.mu.Lock()
	if _, ok := r.participants[p.id]; !ok {
		r.mu.Unlock()
		return
	}
	t := &publishedTrack{up: up, info: info, owner: p}
	r.tracks[info.ID] = t
	r.markDirtyLocked()
	wire := t.wire()
	r.broadcastLocked(&signal.Message{Type: signal.TypeTrackPublished, Track: &wire}, p.id)
	for _, o := range r.participants {
		if o != p {
			o.subscribe(info.ID)
		}
	}
	r.mu.Unlock()
	up.OnClose(func() { r.unpublish(info.ID) })
}

// unpublish removes an ended track from every subscriber.
func (r *Room) unpublish(id sfu.TrackID) {
	r.mu.Lock()
	t, ok := r.tracks[id]
	if !ok {
		r.mu.Unlock()
		return
	}
	delete(r.tracks, id)
	r.markDirtyLocked()
	wire := t.wire()
	downs := make([]Down, 0, len(r.participants))
	for _, o := range r.participants {
		if o != t.owner {
			downs = append(downs, o.peer)
		}
	}
	r.broadcastLocked(&signal.Message{Type: signal.TypeTrackUnpublished, Track: &wire}, t.owner.id)
	for w, ids := range r.watchers {
		for _, watched := range ids {
			if watched == id {
				downs = append(downs, w.peer)
			}
		}
	}
	r.mu.Unlock()
	// Outside the lock: unsubscribing renegotiates.
	for _, d := range downs {
		d.Unsubscribe(id)
	}
}

// setMuted records a mute: a publisher's own (announced; the client
// stops sending), or a moderator's of someone else's track, which also stops
// forwarding it to everyone until its owner unmutes it.
func (r *Room) setMuted(p *participant, trackID string, muted bool) *signal.Error {
	r.mu.Lock()
	t, ok := r.tracks[sfu.TrackID(trackID)]
	if !ok {
		// The publisher may name the track by its own (msid) id.
		for _, c := range r.tracks {
			if c.owner == p && c.info.MSID == trackID {
				t, ok = c, true
				break
			}
		}
	}
	if ok && t.owner.node != "" {
		r.mu.Unlock()
		return r.muteRemote(p, t, muted)
	}
	defer r.mu.Unlock()
	if !ok {
		return signal.Errorf(signal.CodeUnknownTrack, "no track %q in this room", trackID)
	}
	switch {
	case t.owner == p:
		t.muted = muted
		if !muted && t.mutedBy != "" {
			t.mutedBy = ""
			t.up.SetBlocked(false)
		}
	case !p.permissions().Moderate:
		return signal.Errorf(signal.CodeForbidden, "only a moderator may mute another participant's track")
	case !muted:
		return signal.Errorf(signal.CodeForbidden, "only the owner may unmute a track")
	default:
		t.muted, t.mutedBy = true, p.id
		t.up.SetBlocked(true)
		p.log.Info("muted by moderator", "target", string(t.owner.id), "track", string(t.info.ID))
	}
	r.markDirtyLocked()
	wire := t.wire()
	// The owner hears of a moderator's mute too: its client shows it.
	except := p.id
	if t.owner != p {
		except = ""
	}
	r.broadcastLocked(&signal.Message{Type: signal.TypeTrackUpdated, Track: &wire}, except)
	return nil
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
		r.observeSpeakers(&det)
	}
}

// observeSpeakers feeds one interval's loudness of the unmuted microphones
// to det and announces a new dominant speaker.
func (r *Room) observeSpeakers(det *speakerDetector) {
	r.mu.Lock()
	defer r.mu.Unlock()
	loud := map[ParticipantID]int{}
	for _, tr := range r.tracks {
		if tr.info.Kind == webrtc.RTPCodecTypeAudio && !tr.muted {
			if v := tr.up.TakeLoudness(); v > loud[tr.owner.id] {
				loud[tr.owner.id] = v
			}
		}
	}
	if det.current != "" && !r.memberLocked(det.current) {
		det.forget(det.current)
	}
	if id := det.observe(loud); id != "" {
		r.speaker = id
		r.broadcastLocked(&signal.Message{Type: signal.TypeActiveSpeaker, Speaker: string(id)}, "")
	}
}

// Speaker returns the current dominant speaker's id, or "".
func (r *Room) Speaker() ParticipantID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.speaker
}
