package room

import (
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

// audienceCountLocked is everyone watching without being a member, on
// every node.
func (r *Room) audienceCountLocked() int {
	n := r.localAudienceLocked()
	for _, rn := range r.remoteNodesLocked() {
		n += rn.audience
	}
	return n
}

// localAudienceLocked is this node's part of the audience.
func (r *Room) localAudienceLocked() int {
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

// handsLocked lists the raised hands: this node's in join order, then
// other nodes'.
func (r *Room) handsLocked() []signal.Participant {
	var out []signal.Participant
	for _, id := range r.order {
		if r.hands[id] {
			if p, ok := r.participants[id]; ok {
				out = append(out, p.public())
			}
		}
	}
	for _, rn := range r.remoteNodesLocked() {
		out = append(out, rn.hands...)
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
			r.hands = map[ParticipantID]bool{}
		}
		r.hands[p.id] = true
	} else {
		delete(r.hands, p.id)
	}
	pub := p.public()
	r.toModeratorsLocked(&signal.Message{Type: signal.TypeHand, Participant: &pub, Raised: &raised})
	r.markDirtyLocked()
	return nil
}

// setAudienceChat turns the audience's chat on or off (moderators).
func (r *Room) setAudienceChat(mod *participant, on bool) *signal.Error {
	if !mod.permissions().Moderate {
		return signal.Errorf(signal.CodeForbidden, "only a moderator may change the lecture's settings")
	}
	r.mu.Lock()
	if !r.lecture {
		r.mu.Unlock()
		return signal.Errorf(signal.CodeInvalidState, "this room is not a lecture")
	}
	r.audienceChatOff = !on
	r.broadcastLocked(&signal.Message{Type: signal.TypeLectureSettings, AudienceChat: &on}, "")
	var at int64
	if r.cl != nil {
		at = max(nowNano(), r.cl.chatAt+1)
		r.cl.chatAt = at
		r.markDirtyLocked()
	}
	r.mu.Unlock()
	r.tell(kindSettings, settingsEvent{AudienceChat: on, At: at})
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
