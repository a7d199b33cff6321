package room

import (
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/signal"
)

// Moderation: a moderator removes participants and changes their roles.
// With tokens both hold for the identity, on every way in (its other
// WebSockets, its WHIP publishers, its WHEP players), while the room lives.

// removeByModerator disconnects a participant on a moderator's request.
// With tokens, its identity may not come back while the room lives, by
// any way in: every other connection of it, its WHIP publishers and its
// WHEP players are ended too.
func (r *Room) removeByModerator(mod *participant, id ParticipantID) *signal.Error {
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
	mod.log.Info("removed by moderator", "target", string(id), "connections", len(kicked), "whep_ended", len(watchers))
	for _, p := range kicked {
		p.kick("removed by a moderator", signal.CodeRemoved)
	}
	for _, w := range watchers {
		w.End("removed by a moderator")
	}
	return nil
}

// promote gives a participant another role on a moderator's request. With
// tokens the role belongs to the identity: every connection of it changes,
// and its WHIP publishers end when the role may not publish.
func (r *Room) promote(mod *participant, id ParticipantID, role access.Role) *signal.Error {
	if !mod.permissions().Moderate {
		return signal.Errorf(signal.CodeForbidden, "only a moderator may change roles")
	}
	perms, ok := role.Permissions()
	if !ok {
		return signal.Errorf(signal.CodeInvalidField, "unknown role %q", role)
	}
	r.mu.Lock()
	target, ok := r.participants[id]
	if !ok {
		r.mu.Unlock()
		return signal.Errorf(signal.CodeInvalidField, "no participant %q in this room", id)
	}
	if target.publishOnly {
		r.mu.Unlock()
		return signal.Errorf(signal.CodeInvalidState, "a WHIP publisher's role cannot change")
	}
	targets, revoked := []*participant{target}, []*participant(nil)
	if target.identity != "" {
		if r.roles == nil {
			r.roles = map[string]access.Role{}
		}
		r.roles[target.identity] = role
		for _, p := range r.participants {
			switch {
			case p == target || p.identity != target.identity:
			case p.publishOnly && !perms.Publish:
				revoked = append(revoked, p)
			case !p.publishOnly:
				targets = append(targets, p)
			}
		}
	}
	var stop []*participant
	for _, t := range targets {
		if r.setRoleLocked(t, perms, role) {
			stop = append(stop, t)
		}
	}
	r.mu.Unlock()
	mod.log.Info("role changed", "target", string(id), "role", string(role),
		"connections", len(targets), "whip_ended", len(revoked))
	for _, t := range stop {
		t.peer.StopPublishing()
	}
	for _, p := range revoked {
		p.kick("a moderator took the permission to publish", signal.CodeForbidden)
	}
	return nil
}

// setRoleLocked gives one participant its new role: it is told, its hand
// goes down, and in a lecture it moves between stage and audience. It
// reports whether the participant's publishing must stop.
func (r *Room) setRoleLocked(target *participant, perms access.Permissions, role access.Role) bool {
	wasAudience := r.audienceLocked(target)
	couldPublish := target.permissions().Publish
	target.setRole(perms, role)
	nowAudience := r.audienceLocked(target)
	if r.hands[target.id] {
		delete(r.hands, target.id)
		lowered := false
		pub := target.public()
		r.toModeratorsLocked(&signal.Message{Type: signal.TypeHand, Participant: &pub, Raised: &lowered})
	}
	p := perms
	msg := &signal.Message{Type: signal.TypePermissions, Permissions: &p, Role: string(role)}
	if r.lecture && perms.Moderate {
		msg.Hands = r.handsLocked() // a new moderator sees the hands already up
	}
	target.send(msg)
	pub := target.public()
	switch {
	case wasAudience && !nowAudience:
		r.broadcastLocked(&signal.Message{Type: signal.TypeParticipantJoined, Participant: &pub}, target.id)
		r.audienceChangedLocked()
	case !wasAudience && nowAudience:
		r.broadcastLocked(&signal.Message{Type: signal.TypeParticipantLeft, Participant: &pub}, target.id)
		r.audienceChangedLocked()
	}
	return couldPublish && !perms.Publish
}
