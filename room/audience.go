package room

import (
	"fmt"
	"time"

	"github.com/confab-sfu/confab/room/whip"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
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
	if len(r.participants) == 0 {
		return fmt.Errorf("%w: nothing is being published in room %s", whip.ErrNotFound, r.name)
	}
	if len(r.participants)+len(r.watchers) >= r.mgr.cfg.MaxParticipants {
		return fmt.Errorf("%w: %w", whip.ErrUnavailable, ErrRoomFull)
	}
	owner, recvs := r.watchTargetLocked(participantID, source)
	switch {
	case owner == nil && participantID != "":
		return fmt.Errorf("%w: no participant %s publishing video in room %s", whip.ErrNotFound, participantID, r.name)
	case owner == nil:
		return fmt.Errorf("%w: nothing is being published in room %s", whip.ErrNotFound, r.name)
	}
	if r.watchers == nil {
		r.watchers = map[*httpSession][]*sfu.Receiver{}
	}
	r.watchers[s] = recvs
	r.audienceChangedLocked()
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
func (r *Room) watchTracks(s *httpSession) []*sfu.Receiver {
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
