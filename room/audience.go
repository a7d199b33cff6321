package room

import (
	"fmt"
	"time"

	"github.com/confab-sfu/confab/room/whip"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// audienceInterval is the least time between two audience counts sent to
// the room: an audience of hundreds joining costs the members one message
// a second, not one per viewer.
const audienceInterval = time.Second

// addWatcher admits a WHEP viewer to the room's audience and picks what it
// receives.
func (r *Room) addWatcher(s *httpSession, participantID string, source sfu.Source) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.identity != "" && r.removed[s.identity] {
		return fmt.Errorf("%w: %w", whip.ErrForbidden, ErrRemoved)
	}
	if len(r.participants)+r.remoteCountLocked() == 0 {
		return fmt.Errorf("%w: nothing is being published in room %s", whip.ErrNotFound, r.name)
	}
	if len(r.participants)+len(r.watchers)+r.remoteCountLocked() >= r.mgr.cfg.MaxParticipants {
		return fmt.Errorf("%w: %w", whip.ErrUnavailable, ErrRoomFull)
	}
	owner, tracks := r.watchTargetLocked(ParticipantID(participantID), source)
	switch {
	case owner == nil && participantID != "":
		return fmt.Errorf("%w: no participant %s publishing video in room %s", whip.ErrNotFound, participantID, r.name)
	case owner == nil:
		return fmt.Errorf("%w: nothing is being published in room %s", whip.ErrNotFound, r.name)
	}
	if r.watchers == nil {
		r.watchers = map[*httpSession][]sfu.TrackID{}
	}
	r.watchers[s] = tracks
	r.audienceChangedLocked()
	r.markDirtyLocked()
	return nil
}

// watchTargetLocked picks whose tracks a WHEP viewer gets: the named
// participant, or the first (in join order) who publishes video; its audio,
// and its screen share or camera (source chooses; a screen share by
// default, the main content of a lecture).
func (r *Room) watchTargetLocked(id ParticipantID, source sfu.Source) (*participant, []sfu.TrackID) {
	owner := r.participants[id]
	if owner == nil && id != "" {
		owner = r.remoteMemberLocked(id)
	}
	if id == "" {
		owner = r.firstVideoPublisherLocked()
	}
	if owner == nil {
		return nil, nil
	}
	var audio, camera, screen *publishedTrack
	for _, t := range r.tracks {
		if t.owner.id != owner.id {
			continue
		}
		switch {
		case t.info.Kind == webrtc.RTPCodecTypeAudio && (audio == nil || t.info.Source == sfu.SourceMicrophone):
			audio = t
		case t.info.Kind == webrtc.RTPCodecTypeVideo && t.info.Source == sfu.SourceScreen:
			screen = t
		case t.info.Kind == webrtc.RTPCodecTypeVideo:
			camera = t
		}
	}
	video := screen
	if video == nil || source == sfu.SourceCamera {
		video = camera
	}
	if video == nil {
		video = screen
	}
	var out []sfu.TrackID
	for _, t := range []*publishedTrack{audio, video} {
		if t != nil {
			out = append(out, t.info.ID)
		}
	}
	return owner, out
}

// firstVideoPublisherLocked is the first member, in join order (this
// node's members first), who publishes video.
func (r *Room) firstVideoPublisherLocked() *participant {
	order := r.order
	for _, rn := range r.remoteNodesLocked() {
		order = append(order[:len(order):len(order)], rn.order...)
	}
	for _, id := range order {
		for _, t := range r.tracks {
			if t.owner.id == id && t.info.Kind == webrtc.RTPCodecTypeVideo {
				return t.owner
			}
		}
	}
	return nil
}

// watchersOfLocked are the WHEP sessions of one identity.
func (r *Room) watchersOfLocked(identity string) []*httpSession {
	var out []*httpSession
	for w := range r.watchers {
		if w.identity == identity {
			out = append(out, w)
		}
	}
	return out
}

// watchTracks returns what a watcher was given.
func (r *Room) watchTracks(s *httpSession) []sfu.TrackID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.watchers[s]
}

func (r *Room) removeWatcher(s *httpSession) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.watchers[s]; ok {
		delete(r.watchers, s)
		if len(r.participants) > 0 {
			r.audienceChangedLocked()
		}
		r.markDirtyLocked()
	}
}

// Audience is the number of viewers watching without being members.
func (r *Room) Audience() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.audienceCountLocked()
}

// audienceChangedLocked schedules an audience count for the members.
func (r *Room) audienceChangedLocked() {
	if r.audienceTimer != nil {
		return
	}
	wait := max(0, audienceInterval-time.Since(r.lastAudience))
	r.audienceTimer = time.AfterFunc(wait, r.sendAudience)
}

func (r *Room) sendAudience() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.audienceTimer = nil
	r.lastAudience = time.Now()
	// Everyone gets the count, the audience too (a viewer's page shows
	// how many watch), at most once a second.
	r.broadcastLocked(&signal.Message{Type: signal.TypeAudience, Audience: r.audienceCountLocked()}, "")
}

// takeWatchers stops the audience count of a room that is closing and
// returns its watchers, to be ended outside the lock.
func (r *Room) takeWatchers() []*httpSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*httpSession, 0, len(r.watchers))
	for s := range r.watchers {
		out = append(out, s)
	}
	if r.audienceTimer != nil {
		r.audienceTimer.Stop()
		r.audienceTimer = nil
	}
	return out
}
