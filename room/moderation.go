package room

import (
	"log/slog"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/signal"
)

// Moderation: a moderator removes participants and changes their roles.
// With tokens both hold for the identity, on every way in (its other
// WebSockets, its WHIP publishers, its WHEP players), while the room lives.
// In a cluster the moderator's node checks the permission and the
// member's node acts (cluster_moderation.go); the identity's decision
// reaches every node.

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
	if !ok {
		target = r.remoteMemberLocked(id)
	}
	r.mu.Unlock()
	switch {
	case target == nil:
		return signal.Errorf(signal.CodeInvalidField, "no participant %q in this room", id)
	case target == mod || (target.identity != "" && target.identity == mod.identity):
		return signal.Errorf(signal.CodeInvalidField, "to leave, send leave")
	case target.node != "":
		return r.askModeration(mod, target.node, reqRemove, modRequest{Target: string(id)})
	}
	return r.removeMember(mod.log, id)
}

// removeMember removes a participant of this node (for a moderator here
// or on another node; log names the moderator).
func (r *Room) removeMember(log *slog.Logger, id ParticipantID) *signal.Error {
	r.mu.Lock()
	target, ok := r.participants[id]
	if !ok {
		r.mu.Unlock()
		return signal.Errorf(signal.CodeInvalidField, "no participant %q in this room", id)
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
		r.markDirtyLocked()
	}
	r.mu.Unlock()
	log.Info("removed by moderator", "target", string(id), "connections", len(kicked), "whep_ended", len(watchers))
	if target.identity != "" {
		r.tell(kindRemoved, identityEvent{Identity: target.identity})
	}
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
	if _, ok := role.Permissions(); !ok {
		return signal.Errorf(signal.CodeInvalidField, "unknown role %q", role)
	}
	r.mu.Lock()
	target, ok := r.participants[id]
	if !ok {
		target = r.remoteMemberLocked(id)
	}
	r.mu.Unlock()
	if target != nil && target.node != "" {
		return r.askModeration(mod, target.node, reqPromote, modRequest{Target: string(id), Role: string(role)})
	}
	return r.promoteMember(mod.log, id, role)
}

// promoteMember gives a participant of this node its new role (for a
// moderator here or on another node; log names the moderator).
func (r *Room) promoteMember(log *slog.Logger, id ParticipantID, role access.Role) *signal.Error {
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
	var at int64
	if target.identity != "" {
		at = r.grantLocked(target.identity, role)
		more, gone := r.identityConnsLocked(target.identity, perms, target)
		targets, revoked = append(targets, more...), gone
	}
	var stop []*participant
	for _, t := range targets {
		if r.setRoleLocked(t, perms, role) {
			stop = append(stop, t)
		}
	}
	r.markDirtyLocked()
	r.mu.Unlock()
	log.Info("role changed", "target", string(id), "role", string(role),
		"connections", len(targets), "whip_ended", len(revoked))
	if target.identity != "" {
		r.tell(kindRole, identityEvent{Identity: target.identity, Role: string(role), At: at})
	}
	finishRoleChange(stop, revoked)
	return nil
}

// grantLocked remembers the role a moderator gave an identity and returns
// when (ns; the latest grant wins across nodes).
func (r *Room) grantLocked(identity string, role access.Role) int64 {
	if r.roles == nil {
		r.roles = map[string]access.Role{}
	}
	r.roles[identity] = role
	at := nowNano()
	if r.cl != nil {
		at = max(at, r.cl.roleAt[identity]+1)
		r.cl.roleAt[identity] = at
	}
	return at
}

// identityConnsLocked sorts the identity's connections here (but except)
// into those that take the new role and the WHIP publishers that must end
// because the role may not publish.
func (r *Room) identityConnsLocked(identity string, perms access.Permissions, except *participant) (targets, revoked []*participant) {
	for _, p := range r.participants {
		switch {
		case p == except || p.identity != identity:
		case p.publishOnly && !perms.Publish:
			revoked = append(revoked, p)
		case !p.publishOnly:
			targets = append(targets, p)
		}
	}
	return targets, revoked
}

// finishRoleChange stops the publishing of those who may no longer, and
// ends WHIP publishers whose identity may no longer publish. Outside the
// room lock: both end tracks, which takes it.
func finishRoleChange(stop, revoked []*participant) {
	for _, t := range stop {
		t.peer.StopPublishing()
	}
	for _, p := range revoked {
		p.kick("a moderator took the permission to publish", signal.CodeForbidden)
	}
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
