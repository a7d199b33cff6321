package room

import (
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/signal"
)

// Lecture rooms: one or a few people on stage, an audience that only
// watches. The audience (participants without the publish permission) is
// not announced one by one: members get a throttled audience count, so a
// viewer's join costs everyone else at most a share of one message a
// second, and never a renegotiation. Audience members may raise a hand; a
// moderator may promote them to speaker (they then publish and are
// announced) and demote them back.

// audienceLocked reports whether p is part of the audience rather than a
// member.
func (r *Room) audienceLocked(p *participant) bool {
	return r.lecture && !p.permissions().Publish
}

// audienceCountLocked is everyone watching without being a member.
func (r *Room) audienceCountLocked() int {
	n := len(r.watchers)
	for _, p := range r.participants {
		if r.audienceLocked(p) {
			n++
		}
	}
	return n
}

// toModeratorsLocked sends m to the room's moderators.
func (r *Room) toModeratorsLocked(m *signal.Message) {
	for _, p := range r.participants {
		if p.permissions().Moderate {
			p.send(m)
		}
	}
}

// handsLocked lists the raised hands, in join order.
func (r *Room) handsLocked() []signal.Participant {
	var out []signal.Participant
	for _, id := range r.order {
		if r.hands[id] {
			if p, ok := r.participants[id]; ok {
				out = append(out, p.public())
			}
		}
	}
	return out
}

// raiseHand records an audience member's raised (or lowered) hand and
// tells the moderators.
func (r *Room) raiseHand(p *participant, raised bool) *signal.Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.audienceLocked(p) {
		return signal.Errorf(signal.CodeInvalidState, "only the audience of a lecture raises hands")
	}
	if r.hands[p.id] == raised {
		return nil
	}
	if raised {
		if r.hands == nil {
			r.hands = map[string]bool{}
		}
		r.hands[p.id] = true
	} else {
		delete(r.hands, p.id)
	}
	pub := p.public()
	r.toModeratorsLocked(&signal.Message{Type: signal.TypeHand, Participant: &pub, Raised: &raised})
	return nil
}

// promote gives a participant another role on a moderator's request. With
// tokens the role belongs to the identity: every connection of it changes,
// and its WHIP publishers end when the role may not publish.
func (r *Room) promote(mod *participant, id string, role access.Role) *signal.Error {
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
	r.mgr.log.Info("role changed", "room", r.name, "moderator", mod.id, "participant", id, "role", role,
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

// setAudienceChat turns the audience's chat on or off (moderators).
func (r *Room) setAudienceChat(mod *participant, on bool) *signal.Error {
	if !mod.permissions().Moderate {
		return signal.Errorf(signal.CodeForbidden, "only a moderator may change the lecture's settings")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lecture {
		return signal.Errorf(signal.CodeInvalidState, "this room is not a lecture")
	}
	r.audienceChatOff = !on
	r.broadcastLocked(&signal.Message{Type: signal.TypeLectureSettings, AudienceChat: &on}, "")
	return nil
}

// mayChat reports whether p may chat now: its permission, and in a
// lecture whose audience chat is off, not as audience.
func (r *Room) mayChat(p *participant) bool {
	if !p.permissions().Chat {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return !(r.audienceChatOff && r.audienceLocked(p))
}
