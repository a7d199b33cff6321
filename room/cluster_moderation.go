package room

import (
	"context"
	"time"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
)

// Moderation across nodes: a moderator's node checks the permission and
// sends the action to the member's node, which acts as for a local
// moderator (nodes trust each other: whoever may publish on the cluster's
// subjects is a node). Decisions about an identity (removed, a role) are
// then announced to every node, which applies them to its own connections
// of the identity and refuses a removed one's return.

// moderationTimeout bounds a moderator's request to another node.
const moderationTimeout = 5 * time.Second

func nowNano() int64 { return time.Now().UnixNano() }

// askModeration sends a moderator's action to the member's node and
// returns its refusal, or why it could not be asked.
func (r *Room) askModeration(mod *participant, node, kind string, req modRequest) *signal.Error {
	req.Room, req.Moderator = r.name, string(mod.id)
	ctx, cancel := context.WithTimeout(context.Background(), moderationTimeout)
	defer cancel()
	if err := r.cl.c.node.Request(ctx, node, kind, req, nil); err != nil {
		mod.log.Info("moderation on another node failed", "node", node, "kind", kind, "target", req.Target+req.Track, "err", err)
		return protocolError(err)
	}
	mod.log.Info("moderation on another node", "node", node, "kind", kind, "target", req.Target+req.Track)
	return nil
}

// muteRemote asks a remote track's node to mute it for a moderator here.
func (r *Room) muteRemote(mod *participant, t *publishedTrack, muted bool) *signal.Error {
	switch {
	case !mod.permissions().Moderate:
		return signal.Errorf(signal.CodeForbidden, "only a moderator may mute another participant's track")
	case !muted:
		return signal.Errorf(signal.CodeForbidden, "only the owner may unmute a track")
	}
	return r.askModeration(mod, t.owner.node, reqMute, modRequest{Track: string(t.info.ID)})
}

// roomFor finds the room a request names, refusing one this node does not
// host.
func (c *clusterNode) roomFor(req modRequest) (*Room, error) {
	r := c.m.Room(req.Room)
	if r == nil || r.cl == nil {
		return nil, codedError{signal.Errorf(signal.CodeInvalidState, "room %q is not on this node", req.Room)}
	}
	return r, nil
}

// serveMute mutes a track of this node for a moderator of another.
func (c *clusterNode) serveMute(_ context.Context, from string, req modRequest) (any, error) {
	r, err := c.roomFor(req)
	if err != nil {
		return nil, err
	}
	return struct{}{}, asCoded(r.muteForRemote(from, ParticipantID(req.Moderator), sfu.TrackID(req.Track)))
}

// muteForRemote is a moderator's mute from another node: the track stops
// for everyone (what relays carry too) until its owner unmutes it.
func (r *Room) muteForRemote(node string, mod ParticipantID, id sfu.TrackID) *signal.Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tracks[id]
	if !ok || t.owner.node != "" {
		return signal.Errorf(signal.CodeUnknownTrack, "no track %q of this node in the room", id)
	}
	t.muted, t.mutedBy = true, mod
	t.up.SetBlocked(true)
	r.log.Info("muted by moderator", "node", node, "moderator", string(mod), "target", string(t.owner.id), "track", string(id))
	wire := t.wire()
	r.broadcastLocked(&signal.Message{Type: signal.TypeTrackUpdated, Track: &wire}, "")
	r.markDirtyLocked()
	return nil
}

// serveRemove removes a participant of this node for a moderator of
// another.
func (c *clusterNode) serveRemove(_ context.Context, from string, req modRequest) (any, error) {
	r, err := c.roomFor(req)
	if err != nil {
		return nil, err
	}
	log := r.log.With("node", from, "moderator", req.Moderator)
	return struct{}{}, asCoded(r.removeMember(log, ParticipantID(req.Target)))
}

// servePromote changes the role of a participant of this node for a
// moderator of another.
func (c *clusterNode) servePromote(_ context.Context, from string, req modRequest) (any, error) {
	r, err := c.roomFor(req)
	if err != nil {
		return nil, err
	}
	log := r.log.With("node", from, "moderator", req.Moderator)
	return struct{}{}, asCoded(r.promoteMember(log, ParticipantID(req.Target), access.Role(req.Role)))
}

// takeRemoved applies another node's removal of an identity: its
// connections here end, and it may not come back on this node either.
func (r *Room) takeRemoved(identity string) error {
	if identity == "" {
		return errBadData
	}
	r.mu.Lock()
	if r.removed == nil {
		r.removed = map[string]bool{}
	}
	r.removed[identity] = true
	var kicked []*participant
	for _, p := range r.participants {
		if p.identity == identity {
			kicked = append(kicked, p)
		}
	}
	watchers := r.watchersOfLocked(identity)
	r.mu.Unlock()
	if len(kicked)+len(watchers) > 0 {
		r.log.Info("removed by a moderator on another node", "identity", identity,
			"connections", len(kicked), "whep_ended", len(watchers))
	}
	for _, p := range kicked {
		p.kick("removed by a moderator", signal.CodeRemoved)
	}
	for _, w := range watchers {
		w.End("removed by a moderator")
	}
	return nil
}

// takeRole applies a role another node's moderator gave an identity to
// its connections here, unless a later grant is already in force.
func (r *Room) takeRole(identity string, role access.Role, at int64) error {
	perms, ok := role.Permissions()
	if identity == "" || !ok {
		return errBadData
	}
	r.mu.Lock()
	if at <= r.cl.roleAt[identity] {
		r.mu.Unlock()
		return nil
	}
	if r.roles == nil {
		r.roles = map[string]access.Role{}
	}
	r.roles[identity], r.cl.roleAt[identity] = role, at
	targets, revoked := r.identityConnsLocked(identity, perms, nil)
	var stop []*participant
	for _, t := range targets {
		if r.setRoleLocked(t, perms, role) {
			stop = append(stop, t)
		}
	}
	if len(targets) > 0 {
		r.markDirtyLocked()
	}
	r.mu.Unlock()
	finishRoleChange(stop, revoked)
	return nil
}
