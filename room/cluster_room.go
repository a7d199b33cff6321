package room

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/cluster"
	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/prometheus/client_golang/prometheus"
)

// A room that spans nodes: each node is authoritative for its own members
// and tracks, announces them on the room's subject (a "state" on every
// change and every dead/3), and keeps the other nodes' parts, from which
// its own members learn of the rest of the room exactly as of local
// events. A node opens its part of a room when its first member (or
// viewer) arrives: it subscribes to the room's subject, asks every node
// for its part, and only then lets the newcomer in.

// minStateGap spaces a room's state announcements: a burst of changes (an
// audience arriving) costs one message per gap, not one per change.
const minStateGap = 50 * time.Millisecond

// Reasons a room message from another node is dropped (beyond the
// transport's own, room/cluster's confab_cluster_dropped_total).
const (
	dropBadData     = "bad_data"     // the data does not decode
	dropUnknownKind = "unknown_kind" // no such kind of room message
	dropStale       = "stale"        // a state older than one already applied
)

var metricClusterDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "confab_cluster_room_dropped_total",
	Help: "Room messages from other nodes dropped by the rooms, by reason."}, []string{"reason"})

var metricRemoteParticipants = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "confab_cluster_remote_participants",
	Help: "Members and audience of this node's rooms connected to other nodes."})

func init() {
	prometheus.MustRegister(metricClusterDropped, metricRemoteParticipants)
	for _, r := range []string{dropBadData, dropUnknownKind, dropStale} {
		metricClusterDropped.WithLabelValues(r)
	}
}

// roomCluster is a room's part in the cluster; the fields below ready are
// guarded by the room's lock.
type roomCluster struct {
	c *clusterNode
	// once opens the part (open); a room closed before it opened never
	// does (never).
	once    sync.Once
	never   bool
	wake    chan struct{} // pulls to evaluate
	changed chan struct{} // a change to announce
	stop    chan struct{}
	done    chan struct{}
	// finalVersion numbers the announcement that this node left the
	// room, reserved when the room is removed so that a new room of the
	// same name always announces later versions.
	finalVersion uint64

	dirty        bool
	remotes      map[string]*remoteNode
	pulls        map[sfu.TrackID]*pull
	chatAt       int64            // when the audience chat setting was made (ns), 0: never
	roleAt       map[string]int64 // when each identity's role was given (ns)
	relayArrived chan struct{}    // closed and replaced when a relayed track arrives
}

func newRoomCluster(c *clusterNode) *roomCluster {
	return &roomCluster{c: c, wake: make(chan struct{}, 1), changed: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		remotes: map[string]*remoteNode{}, pulls: map[sfu.TrackID]*pull{}, roleAt: map[string]int64{},
		relayArrived: make(chan struct{})}
}

// awaitReady opens the room's part of the cluster if it is not open yet,
// and waits until it is: nobody enters before the room is known.
func (r *Room) awaitReady() {
	if r.cl != nil {
		r.cl.once.Do(r.open)
	}
}

// open joins the room's subject, takes in the other nodes' parts and
// starts announcing this node's.
func (r *Room) open() {
	cl := r.cl
	leave, err := cl.c.node.JoinRoom(r.name, r.onClusterMessage)
	if err != nil {
		r.log.Warn("cluster: room events from other nodes will not arrive", "err", err)
	}
	replies := cl.c.node.RequestAll(context.Background(), reqSnapshot, roomRequest{Room: r.name})
	r.mu.Lock()
	adopted := false
	for _, rep := range replies {
		if rep.Err != nil {
			r.log.Debug("cluster: snapshot", "node", rep.Node, "err", rep.Err)
			continue
		}
		var st nodeState
		if err := json.Unmarshal(rep.Data, &st); err != nil {
			metricClusterDropped.WithLabelValues(dropBadData).Inc()
			continue
		}
		if st.Hosted && !adopted {
			// The room exists: this node takes its kind from it.
			r.lecture, adopted = st.Lecture, true
		}
		r.applyStateLocked(rep.Node, &st)
	}
	cl.dirty = true
	r.mu.Unlock()
	go r.runCluster(leave)
}

// runCluster expires the parts of nodes that went quiet and pulls the
// remote tracks local members need, while runAnnounce announces this
// node's part, until the room closes. Pulls wait for other nodes' replies
// (up to pullTimeout each): announcing apart from them, a node whose
// requests are slow to be answered never goes quiet long enough for its
// part to expire on the others, which would make its members leave and
// come back there.
func (r *Room) runCluster(leave func()) {
	cl := r.cl
	defer close(cl.done)
	announcing := make(chan struct{})
	go func() {
		defer close(announcing)
		r.runAnnounce()
	}()
	tick := time.NewTicker(min(cl.announceEvery(), pullEvery))
	defer tick.Stop()
	for {
		select {
		case <-cl.stop:
			<-announcing // no state follows the departure
			r.stopPulls()
			r.announceLeft()
			if leave != nil {
				leave()
			}
			r.forgetRemotes()
			return
		case <-cl.wake:
		case <-tick.C:
		}
		r.expireRemotes(time.Now())
		r.evaluatePulls()
	}
}

// announceEvery is how often a room's part is announced when nothing
// changes: three times within the time after which the others expire it.
func (cl *roomCluster) announceEvery() time.Duration {
	return max(cl.c.dead/3, 100*time.Millisecond)
}

// runAnnounce announces this node's part of the room after each change,
// at most once per minStateGap, and every announceEvery in any case, until
// the room closes.
func (r *Room) runAnnounce() {
	cl := r.cl
	tick := time.NewTicker(cl.announceEvery())
	defer tick.Stop()
	gap := time.NewTimer(0)
	defer gap.Stop()
	var last time.Time
	due := false
	for {
		select {
		case <-cl.stop:
			return
		case <-cl.changed:
		case <-tick.C:
			due = true
		case <-gap.C:
		}
		r.mu.Lock()
		due = due || cl.dirty
		r.mu.Unlock()
		if !due {
			continue
		}
		if wait := minStateGap - time.Since(last); wait > 0 {
			gap.Reset(wait)
			continue
		}
		r.announce()
		last, due = time.Now(), false
	}
}

// markDirtyLocked schedules an announcement of this node's part; the
// change may also change what to pull.
func (r *Room) markDirtyLocked() {
	if r.cl == nil {
		return
	}
	r.cl.dirty = true
	select {
	case r.cl.changed <- struct{}{}:
	default:
	}
	r.cl.poke()
}

// poke has the room's cluster loop evaluate its pulls soon.
func (cl *roomCluster) poke() {
	select {
	case cl.wake <- struct{}{}:
	default:
	}
}

// announce publishes this node's part of the room.
func (r *Room) announce() {
	r.mu.Lock()
	r.cl.dirty = false
	st := r.localStateLocked()
	r.mu.Unlock()
	r.tell(kindState, st)
}

// announceLeft tells the other nodes this node has left the room.
func (r *Room) announceLeft() {
	r.tell(kindState, nodeState{Hosted: false, Epoch: r.cl.c.epoch, Version: r.cl.finalVersion})
}

// tell sends a room event to the other nodes. Nothing is retried: a
// lost state is followed by the next one, a lost event is lost as a
// message on a broken network would be.
func (r *Room) tell(kind string, data any) {
	if r.cl == nil {
		return
	}
	if err := r.cl.c.node.Publish(r.name, kind, data); err != nil && !errors.Is(err, cluster.ErrNotConnected) {
		r.log.Warn("cluster: publish", "kind", kind, "err", err)
	}
}

// localState is this node's part of the room.
func (r *Room) localState(hosted bool) nodeState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.localStateLocked()
	st.Hosted = hosted
	return st
}

func (r *Room) localStateLocked() nodeState {
	st := nodeState{Hosted: true, Epoch: r.cl.c.epoch, Version: r.cl.c.nextVersion(),
		Lecture: r.lecture, AudienceChatOff: r.audienceChatOff, AudienceChatAt: r.cl.chatAt, Recording: r.rec != nil}
	for _, id := range r.order {
		if p, ok := r.participants[id]; ok && !r.audienceLocked(p) {
			st.Members = append(st.Members, p.public())
		}
	}
	for _, t := range r.tracks {
		if t.owner.node == "" {
			st.Tracks = append(st.Tracks, t.wire())
		}
	}
	sort.Slice(st.Tracks, func(i, j int) bool { return st.Tracks[i].ID < st.Tracks[j].ID })
	st.Audience = r.localAudienceLocked()
	for _, id := range r.order {
		if r.hands[id] {
			st.Hands = append(st.Hands, r.participants[id].public())
		}
	}
	for identity := range r.removed {
		st.Removed = append(st.Removed, identity)
	}
	sort.Strings(st.Removed)
	for identity, role := range r.roles {
		if st.Roles == nil {
			st.Roles = map[string]roleGrant{}
		}
		st.Roles[identity] = roleGrant{Role: string(role), At: r.cl.roleAt[identity]}
	}
	return st
}

// onClusterMessage takes a room event from another node (one at a time,
// in the order each node sent them).
func (r *Room) onClusterMessage(msg cluster.Message) {
	var err error
	switch msg.Kind {
	case kindState:
		var st nodeState
		if err = json.Unmarshal(msg.Data, &st); err == nil {
			r.takeState(msg.Node, &st)
		}
	case kindChat:
		var ev chatEvent
		if err = json.Unmarshal(msg.Data, &ev); err == nil {
			err = r.takeChat(ev)
		}
	case kindSettings:
		var ev settingsEvent
		if err = json.Unmarshal(msg.Data, &ev); err == nil {
			r.takeSettings(ev.AudienceChat, ev.At)
		}
	case kindRemoved:
		var ev identityEvent
		if err = json.Unmarshal(msg.Data, &ev); err == nil {
			err = r.takeRemoved(ev.Identity)
		}
	case kindRole:
		var ev identityEvent
		if err = json.Unmarshal(msg.Data, &ev); err == nil {
			err = r.takeRole(ev.Identity, access.Role(ev.Role), ev.At)
		}
	default:
		metricClusterDropped.WithLabelValues(dropUnknownKind).Inc()
		r.log.Debug("cluster: room message of unknown kind dropped", "node", msg.Node, "kind", msg.Kind)
		return
	}
	if err != nil {
		metricClusterDropped.WithLabelValues(dropBadData).Inc()
		r.log.Debug("cluster: room message dropped", "node", msg.Node, "kind", msg.Kind, "err", err)
	}
}

// takeChat delivers another node's member's chat to the members here.
func (r *Room) takeChat(ev chatEvent) error {
	if ev.From == "" || ev.Text == "" {
		return errors.New("chat without sender or text")
	}
	r.broadcast(&signal.Message{Type: signal.TypeChat, From: ev.From, Name: ev.Name, Text: ev.Text}, "")
	return nil
}

// takeSettings applies a moderator's lecture setting made on another node,
// unless a later one is already in force.
func (r *Room) takeSettings(audienceChat bool, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.takeSettingsLocked(audienceChat, at)
}

func (r *Room) takeSettingsLocked(audienceChat bool, at int64) {
	if at <= r.cl.chatAt {
		return
	}
	r.cl.chatAt = at
	if r.audienceChatOff == !audienceChat {
		return
	}
	r.audienceChatOff = !audienceChat
	if r.lecture {
		r.broadcastLocked(&signal.Message{Type: signal.TypeLectureSettings, AudienceChat: &audienceChat}, "")
	}
	r.markDirtyLocked()
}

// close of the cluster part: the loop announces the departure and leaves
// the subject.
func (cl *roomCluster) close() {
	cl.once.Do(func() { cl.never = true })
	if cl.never {
		return
	}
	close(cl.stop)
	<-cl.done
}
