package room

import (
	"slices"
	"sync"
	"time"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// The other nodes' parts of a room, as their states announce them. Each
// state replaces the node's part; what changed reaches the local members
// as the events a local change would send, in the same order (a member
// joins before its tracks are published, and leaves before they end).

// remoteNode is one other node's part of a room.
type remoteNode struct {
	id      string
	epoch   int64
	version uint64
	seen    time.Time
	members map[ParticipantID]*participant // announced members, as participants without a connection here
	order   []ParticipantID
	tracks  map[sfu.TrackID]bool // theirs, in the room's tracks
	// audience counts the node's lecture audience and WHEP viewers.
	audience int
	hands    []signal.Participant
}

// takeState applies a node's state and lets go of what it ended.
func (r *Room) takeState(node string, st *nodeState) {
	r.mu.Lock()
	ended := r.applyStateLocked(node, st)
	empty := r.desertedLocked()
	r.mu.Unlock()
	unsubscribeAll(ended)
	if empty {
		go r.mgr.removeIfEmpty(r)
	}
}

// applyStateLocked replaces a node's part of the room with st. It returns
// the local subscriptions of tracks that ended, to be dropped outside the
// lock.
func (r *Room) applyStateLocked(node string, st *nodeState) []unsubscription {
	rn := r.cl.remotes[node]
	if rn != nil && !st.newer(rn.epoch, rn.version) {
		metricClusterDropped.WithLabelValues(dropStale).Inc()
		return nil
	}
	if rn == nil {
		rn = &remoteNode{id: node, members: map[ParticipantID]*participant{}, tracks: map[sfu.TrackID]bool{}}
		r.cl.remotes[node] = rn
	}
	rn.epoch, rn.version, rn.seen = st.Epoch, st.Version, time.Now()
	r.mergeDecisionsLocked(st)
	if !st.Hosted {
		st = &nodeState{}
	}
	r.applyMembersLocked(rn, st.Members)
	ended := r.applyTracksLocked(rn, st.Tracks)
	if rn.audience != st.Audience {
		metricRemoteParticipants.Add(float64(st.Audience - rn.audience))
		rn.audience = st.Audience
		r.audienceChangedLocked()
	}
	r.applyHandsLocked(rn, st.Hands)
	return ended
}

// mergeDecisionsLocked takes in what a node knows of the room's settings
// and of moderators' decisions: removals add up, later settings win.
func (r *Room) mergeDecisionsLocked(st *nodeState) {
	for _, identity := range st.Removed {
		if identity != "" && !r.removed[identity] {
			if r.removed == nil {
				r.removed = map[string]bool{}
			}
			r.removed[identity] = true
		}
	}
	for identity, g := range st.Roles {
		if _, ok := access.Role(g.Role).Permissions(); ok && identity != "" && g.At > r.cl.roleAt[identity] {
			// Applied to this node's connections of the identity by the
			// role event; a state only brings the grant along for later
			// joins.
			if r.roles == nil {
				r.roles = map[string]access.Role{}
			}
			r.roles[identity], r.cl.roleAt[identity] = access.Role(g.Role), g.At
		}
	}
	if st.AudienceChatAt > 0 {
		r.takeSettingsLocked(!st.AudienceChatOff, st.AudienceChatAt)
	}
}

// applyMembersLocked announces the node's members who left, then those
// who joined.
func (r *Room) applyMembersLocked(rn *remoteNode, members []signal.Participant) {
	now := make(map[ParticipantID]signal.Participant, len(members))
	for _, m := range members {
		if m.ID != "" && r.participants[ParticipantID(m.ID)] == nil {
			now[ParticipantID(m.ID)] = m
		}
	}
	kept := rn.order[:0]
	for _, id := range rn.order {
		p := rn.members[id]
		if m, ok := now[id]; ok {
			p.name, p.identity = m.Name, m.Identity
			p.setRole(rolePermissions(m.Role), access.Role(m.Role))
			kept = append(kept, id)
			continue
		}
		delete(rn.members, id)
		metricRemoteParticipants.Dec()
		left := p.public()
		r.broadcastLocked(&signal.Message{Type: signal.TypeParticipantLeft, Participant: &left}, "")
	}
	rn.order = kept
	for _, m := range members {
		id := ParticipantID(m.ID)
		if _, ok := now[id]; !ok || rn.members[id] != nil {
			continue
		}
		p := &participant{id: id, name: m.Name, identity: m.Identity, node: rn.id,
			role: access.Role(m.Role), perms: rolePermissions(m.Role)}
		rn.members[id] = p
		rn.order = append(rn.order, id)
		metricRemoteParticipants.Inc()
		joined := p.public()
		r.broadcastLocked(&signal.Message{Type: signal.TypeParticipantJoined, Participant: &joined}, "")
	}
}

// rolePermissions are what a role announced by another node allows.
func rolePermissions(role string) access.Permissions {
	perms, _ := access.Role(role).Permissions()
	return perms
}

// applyTracksLocked ends the node's tracks it no longer lists, publishes
// its new ones and announces mutes.
func (r *Room) applyTracksLocked(rn *remoteNode, tracks []signal.Track) []unsubscription {
	listed := make(map[sfu.TrackID]signal.Track, len(tracks))
	for _, w := range tracks {
		listed[sfu.TrackID(w.ID)] = w
	}
	var ended []unsubscription
	for id := range rn.tracks {
		if _, ok := listed[id]; !ok {
			ended = append(ended, r.endRemoteTrackLocked(rn, id)...)
		}
	}
	for _, w := range tracks {
		id := sfu.TrackID(w.ID)
		if rn.tracks[id] {
			r.updateRemoteTrackLocked(r.tracks[id], w)
			continue
		}
		owner := rn.members[ParticipantID(w.Participant)]
		if owner == nil || w.ID == "" || r.tracks[id] != nil {
			continue // not a member's, or not the node's to publish
		}
		up := newRemoteUp(rn.id, w)
		t := &publishedTrack{up: up, info: up.info, owner: owner, muted: w.Muted, mutedBy: ParticipantID(w.MutedBy)}
		up.SetBlocked(w.MutedBy != "")
		r.tracks[id] = t
		rn.tracks[id] = true
		wire := t.wire()
		r.broadcastLocked(&signal.Message{Type: signal.TypeTrackPublished, Track: &wire}, "")
		r.cl.poke() // local members may want it
	}
	return ended
}

// updateRemoteTrackLocked follows a remote track's layers and mute.
func (r *Room) updateRemoteTrackLocked(t *publishedTrack, w signal.Track) {
	t.up.(*remoteUp).setLayers(w.Layers)
	mutedBy := ParticipantID(w.MutedBy)
	if t.muted == w.Muted && t.mutedBy == mutedBy {
		return
	}
	if (t.mutedBy != "") != (mutedBy != "") {
		t.up.SetBlocked(mutedBy != "")
	}
	t.muted, t.mutedBy = w.Muted, mutedBy
	wire := t.wire()
	r.broadcastLocked(&signal.Message{Type: signal.TypeTrackUpdated, Track: &wire}, "")
}

// endRemoteTrackLocked unpublishes a remote track here.
func (r *Room) endRemoteTrackLocked(rn *remoteNode, id sfu.TrackID) []unsubscription {
	t := r.tracks[id]
	delete(rn.tracks, id)
	delete(r.cl.pulls, id)
	if t == nil {
		return nil
	}
	delete(r.tracks, id)
	wire := t.wire()
	r.broadcastLocked(&signal.Message{Type: signal.TypeTrackUnpublished, Track: &wire}, "")
	t.up.(*remoteUp).end()
	return r.subscriptionsLocked(id)
}

// applyHandsLocked tells the moderators of the node's hands raised and
// lowered.
func (r *Room) applyHandsLocked(rn *remoteNode, hands []signal.Participant) {
	was := map[string]bool{}
	for _, h := range rn.hands {
		was[h.ID] = true
	}
	is := map[string]bool{}
	for _, h := range hands {
		is[h.ID] = true
	}
	for _, h := range rn.hands {
		if !is[h.ID] {
			lowered, pub := false, h
			r.toModeratorsLocked(&signal.Message{Type: signal.TypeHand, Participant: &pub, Raised: &lowered})
		}
	}
	for _, h := range hands {
		if !was[h.ID] {
			raised, pub := true, h
			r.toModeratorsLocked(&signal.Message{Type: signal.TypeHand, Participant: &pub, Raised: &raised})
		}
	}
	rn.hands = slices.Clone(hands)
}

// dropNode removes a node's part of the room at once: the node is gone.
func (r *Room) dropNode(node string) {
	if r.cl == nil {
		return
	}
	r.mu.Lock()
	rn := r.cl.remotes[node]
	var ended []unsubscription
	if rn != nil {
		ended = r.dropRemoteLocked(rn)
	}
	empty := r.desertedLocked()
	r.mu.Unlock()
	unsubscribeAll(ended)
	if empty {
		go r.mgr.removeIfEmpty(r)
	}
}

// dropRemoteLocked forgets a node's part, telling the members here.
func (r *Room) dropRemoteLocked(rn *remoteNode) []unsubscription {
	r.applyMembersLocked(rn, nil)
	ended := r.applyTracksLocked(rn, nil)
	if rn.audience != 0 {
		metricRemoteParticipants.Sub(float64(rn.audience))
		rn.audience = 0
		r.audienceChangedLocked()
	}
	r.applyHandsLocked(rn, nil)
	delete(r.cl.remotes, rn.id)
	return ended
}

// expireRemotes drops the parts of nodes not heard from within dead: a
// node cut off, or gone without a word, leaves no ghosts.
func (r *Room) expireRemotes(now time.Time) {
	r.mu.Lock()
	var ended []unsubscription
	for _, rn := range r.cl.remotes {
		if now.Sub(rn.seen) > r.cl.c.dead {
			if len(rn.members) > 0 || rn.audience > 0 {
				r.log.Info("cluster: a node's part of the room expired", "node", rn.id, "members", len(rn.members))
			}
			ended = append(ended, r.dropRemoteLocked(rn)...)
		}
	}
	empty := r.desertedLocked()
	r.mu.Unlock()
	unsubscribeAll(ended)
	if empty {
		go r.mgr.removeIfEmpty(r)
	}
}

// forgetRemotes lets go of the other nodes' parts when the room closes
// here (nobody is left to tell).
func (r *Room) forgetRemotes() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rn := range r.cl.remotes {
		metricRemoteParticipants.Sub(float64(len(rn.members) + rn.audience))
		delete(r.cl.remotes, id)
	}
}

// remoteCountLocked counts the room's members and audience on other nodes.
func (r *Room) remoteCountLocked() int {
	if r.cl == nil {
		return 0
	}
	n := 0
	for _, rn := range r.cl.remotes {
		n += len(rn.members) + rn.audience
	}
	return n
}

// remoteMemberLocked finds a member (or a raised hand) of another node.
func (r *Room) remoteMemberLocked(id ParticipantID) *participant {
	if r.cl == nil {
		return nil
	}
	for _, rn := range r.cl.remotes {
		if p := rn.members[id]; p != nil {
			return p
		}
		for _, h := range rn.hands {
			if ParticipantID(h.ID) == id {
				return &participant{id: id, name: h.Name, identity: h.Identity, node: rn.id,
					role: access.Role(h.Role), perms: rolePermissions(h.Role)}
			}
		}
	}
	return nil
}

// remoteNodesLocked lists the other nodes' parts in a stable order.
func (r *Room) remoteNodesLocked() []*remoteNode {
	if r.cl == nil {
		return nil
	}
	out := make([]*remoteNode, 0, len(r.cl.remotes))
	for _, rn := range r.cl.remotes {
		out = append(out, rn)
	}
	slices.SortFunc(out, func(a, b *remoteNode) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return out
}

// desertedLocked reports a room that has only viewers left here and
// nobody anywhere for them to watch.
func (r *Room) desertedLocked() bool {
	return len(r.participants) == 0 && len(r.watchers) > 0 && r.remoteCountLocked() == 0
}

// unsubscription is one local subscriber's down-track to drop.
type unsubscription struct {
	down  Down
	track sfu.TrackID
}

// subscriptionsLocked lists the local subscriptions of a track.
func (r *Room) subscriptionsLocked(id sfu.TrackID) []unsubscription {
	var out []unsubscription
	for _, p := range r.participants {
		out = append(out, unsubscription{p.peer, id})
	}
	for w, ids := range r.watchers {
		if slices.Contains(ids, id) {
			out = append(out, unsubscription{w.peer, id})
		}
	}
	return out
}

func unsubscribeAll(us []unsubscription) {
	for _, u := range us {
		u.down.Unsubscribe(u.track)
	}
}

// remoteUp is a track published on another node, as this node knows it:
// its announcement, and its relayed Receiver while this node pulls it.
type remoteUp struct {
	info sfu.TrackInfo
	node string

	mu      sync.Mutex
	layers  []int
	recv    *sfu.Receiver // relayed here; nil while not pulled
	blocked bool
	ended   bool
	onClose []func()
}

var _ UpTrack = (*remoteUp)(nil)

func newRemoteUp(node string, w signal.Track) *remoteUp {
	u := &remoteUp{node: node, info: sfu.TrackInfo{ID: sfu.TrackID(w.ID), Kind: webrtc.NewRTPCodecType(w.Kind),
		Codec: w.Codec, Source: sfu.Source(w.Source), StreamID: w.StreamID}}
	u.setLayers(w.Layers)
	return u
}

func (u *remoteUp) Info() sfu.TrackInfo { return u.info }

// Layers are the layers the origin receives.
func (u *remoteUp) Layers() []int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.layers)
}

func (u *remoteUp) setLayers(names []string) {
	var layers []int
	for _, n := range names {
		if l, ok := signal.LayerIndex(n); ok {
			layers = append(layers, l)
		}
	}
	u.mu.Lock()
	u.layers = layers
	u.mu.Unlock()
}

// SetBlocked follows a moderator's mute made at the origin: the relayed
// track stops here too at once, and on release this node's subscribers
// restart at a keyframe as the origin's do.
func (u *remoteUp) SetBlocked(b bool) {
	u.mu.Lock()
	u.blocked = b
	recv := u.recv
	u.mu.Unlock()
	if recv != nil {
		recv.SetBlocked(b)
	}
}

// TakeLoudness reads the relayed audio's level (the relay carries the
// publisher's audio-level extension), 0 while the track is not pulled.
func (u *remoteUp) TakeLoudness() int {
	u.mu.Lock()
	recv := u.recv
	u.mu.Unlock()
	if recv == nil {
		return 0
	}
	return recv.TakeLoudness()
}

func (u *remoteUp) OnClose(f func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.onClose = append(u.onClose, f)
}

// relayed returns the Receiver relayed here, or nil.
func (u *remoteUp) relayed() *sfu.Receiver {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.recv
}

// attach makes recv the track's relayed Receiver; false when the track
// already ended here.
func (u *remoteUp) attach(recv *sfu.Receiver) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ended {
		return false
	}
	u.recv = recv
	recv.SetBlocked(u.blocked)
	return true
}

// detach forgets recv if it is still the relayed Receiver.
func (u *remoteUp) detach(recv *sfu.Receiver) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.recv != recv {
		return false
	}
	u.recv = nil
	return true
}

// end runs the close callbacks: the track left the room here.
func (u *remoteUp) end() {
	u.mu.Lock()
	if u.ended {
		u.mu.Unlock()
		return
	}
	u.ended = true
	u.recv = nil
	fs := u.onClose
	u.onClose = nil
	u.mu.Unlock()
	for _, f := range fs {
		f()
	}
}
