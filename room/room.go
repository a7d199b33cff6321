package room

import (
	"log/slog"
	"sync"
	"time"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
)

// Room is one conference: its members and the tracks they publish. Every
// member subscribes to every track of the others.
type Room struct {
	name string
	mgr  *Manager
	log  *slog.Logger // carries room

	mu              sync.Mutex
	participants    map[ParticipantID]*participant
	order           []ParticipantID // join order, for stable member lists
	tracks          map[sfu.TrackID]*publishedTrack
	speaker         ParticipantID
	removed         map[string]bool                // identities a moderator removed, refused while the room lives
	roles           map[string]access.Role         // identity -> role a moderator gave, kept while the room lives
	watchers        map[*httpSession][]sfu.TrackID // WHEP viewers and what they receive
	lecture         bool                           // see lecture.go
	hands           map[ParticipantID]bool         // raised hands of the audience
	audienceChatOff bool                           // a moderator turned the audience's chat off
	audienceTimer   *time.Timer
	lastAudience    time.Time
	videoCodec      string // what publishers send; see codec.go

	// cl is the room's part in a cluster; nil on a single server.
	cl *roomCluster
	// joining counts entries under way (guarded by the Manager's lock):
	// the room is not removed as empty while someone is about to enter.
	joining int

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func newRoom(m *Manager, name string) *Room {
	r := &Room{name: name, mgr: m, log: m.log.With("room", name),
		participants: map[ParticipantID]*participant{}, tracks: map[sfu.TrackID]*publishedTrack{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if m.cl != nil {
		r.cl = newRoomCluster(m.cl)
	}
	go r.detectSpeakers()
	return r
}

// close stops the room's goroutines; the room is empty by then. In a
// cluster the other nodes are told this node left the room.
func (r *Room) close() {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	if r.cl != nil {
		r.cl.close()
	}
}

// Name is the room's name.
func (r *Room) Name() string { return r.name }

// empty reports a room with no participant here. In a cluster, a room
// whose viewers here watch members of other nodes is not empty.
func (r *Room) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.participants) == 0 && (len(r.watchers) == 0 || r.remoteCountLocked() == 0)
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
	if p.identity != "" && r.removed[p.identity] {
		return ErrRemoved
	}
	if len(r.participants)+r.remoteCountLocked() >= r.mgr.cfg.MaxParticipants {
		return ErrRoomFull
	}
	if role, ok := r.roles[p.identity]; ok && p.identity != "" {
		// A moderator's promotion or demotion outlives a reconnect, and
		// holds for every way in: a WHIP publisher demoted to viewer may
		// not publish again with its old token.
		perms, _ := role.Permissions()
		switch {
		case p.publishOnly && !perms.Publish:
			return ErrPublishRevoked
		case p.publishOnly:
			p.setRole(access.Permissions{Publish: true}, role) // it still only publishes
		default:
			p.setRole(perms, role)
		}
	}
	p.room = r
	r.participants[p.id] = p
	r.order = append(r.order, p.id)
	r.markDirtyLocked()
	return nil
}

// Participants returns the members' public descriptions in join order.
func (r *Room) Participants() []signal.Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.membersLocked("")
}

func (r *Room) membersLocked(except ParticipantID) []signal.Participant {
	out := make([]signal.Participant, 0, len(r.order))
	for _, id := range r.order {
		if id == except {
			continue
		}
		if p, ok := r.participants[id]; ok && !r.audienceLocked(p) {
			out = append(out, p.public())
		}
	}
	for _, rn := range r.remoteNodesLocked() {
		for _, id := range rn.order {
			out = append(out, rn.members[id].public())
		}
	}
	return out
}

// memberLocked reports whether id is a member of the room, here or on
// another node.
func (r *Room) memberLocked(id ParticipantID) bool {
	if _, ok := r.participants[id]; ok {
		return true
	}
	if r.cl != nil {
		for _, rn := range r.cl.remotes {
			if _, ok := rn.members[id]; ok {
				return true
			}
		}
	}
	return false
}

// welcome completes p's join: p learns the room, the others learn of p, and
// p subscribes to every published track. It runs under the room lock so no
// track published meanwhile is missed or subscribed twice.
func (r *Room) welcome(p *participant, requestID string, iceServers []signal.ICEServer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recodecLocked(p.id)
	me, perms := p.public(), p.permissions()
	welcome := &signal.Message{
		Type: signal.TypeWelcome, ID: requestID, Room: r.name,
		Participant: &me,
		Members:     r.membersLocked(p.id),
		Tracks:      r.tracksLocked(p.id),
		ICEServers:  iceServers,
		Permissions: &perms,
		Lecture:     r.lecture,
		Audience:    r.audienceCountLocked(),
		VideoCodec:  r.codec(),
	}
	if r.lecture {
		chat := !r.audienceChatOff
		welcome.AudienceChat = &chat
		if perms.Moderate {
			welcome.Hands = r.handsLocked()
		}
	}
	p.send(welcome)
	if r.audienceLocked(p) {
		r.audienceChangedLocked() // a viewer is counted, not announced
	} else {
		r.broadcastLocked(&signal.Message{Type: signal.TypeParticipantJoined, Participant: &me}, p.id)
	}
	for id, t := range r.tracks {
		if t.owner != p {
			p.subscribe(id)
		}
	}
}

// remove takes p out of the room and tells the others.
func (r *Room) remove(p *participant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.participants[p.id]; !ok {
		return
	}
	delete(r.participants, p.id)
	for i, id := range r.order {
		if id == p.id {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	r.markDirtyLocked()
	left := p.public()
	if r.hands[p.id] {
		delete(r.hands, p.id)
		lowered := false
		r.toModeratorsLocked(&signal.Message{Type: signal.TypeHand, Participant: &left, Raised: &lowered})
	}
	if r.audienceLocked(p) {
		r.audienceChangedLocked()
	} else {
		r.broadcastLocked(&signal.Message{Type: signal.TypeParticipantLeft, Participant: &left}, p.id)
	}
	r.recodecLocked("")
}

// chat sends p's text to every other member, here and on other nodes.
func (r *Room) chat(p *participant, text string) {
	r.broadcast(&signal.Message{Type: signal.TypeChat, From: string(p.id), Name: p.name, Text: text}, p.id)
	r.tell(kindChat, chatEvent{From: string(p.id), Name: p.name, Text: text})
}

// broadcast sends m to every member but except.
func (r *Room) broadcast(m *signal.Message, except ParticipantID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broadcastLocked(m, except)
}

func (r *Room) broadcastLocked(m *signal.Message, except ParticipantID) {
	for id, p := range r.participants {
		if id != except {
			p.send(m)
		}
	}
}
