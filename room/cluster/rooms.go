package cluster

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// Message is one room event from another node.
type Message struct {
	Room string
	Node string // the sender
	Kind string
	Seq  uint64 // the sender's message counter
	Data json.RawMessage
}

// roomSub is one JoinRoom: a subscription and its handler.
type roomSub struct {
	room string
	h    func(Message)
	sub  *nats.Subscription
	// call is held while h runs, so that leave can wait for a running h.
	call sync.Mutex
	left atomic.Bool
	once sync.Once
}

// JoinRoom delivers the room's events from other live nodes to h, in the
// order each sender published them, one at a time, until leave is
// called. After leave returns h is not called again; leave waits for a
// running h, so it must not be called from inside h (use go leave()).
//
// The interest reaches the other NATS servers of the cluster a moment
// after JoinRoom returns, and events published before that are not
// delivered: a joining node asks for a snapshot (RequestAll) and the
// nodes re-announce their state, as the design says.
func (n *Node) JoinRoom(room string, h func(Message)) (leave func(), err error) {
	if !validRoom(room) {
		return nil, fmt.Errorf("%w: room name %q", ErrBadArgument, room)
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrBadArgument)
	}
	rs := &roomSub{room: room, h: h}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	sub, err := n.nc.Subscribe(n.subj.room(room), func(msg *nats.Msg) { n.onRoomMessage(rs, msg) })
	if err != nil {
		n.mu.Unlock()
		return nil, fmt.Errorf("cluster: join room %q: %w", room, natsError(err))
	}
	rs.sub = sub
	n.rooms[rs] = struct{}{}
	n.mu.Unlock()
	// Make this node's server know the interest before returning; the
	// other servers of the cluster learn it over the routes a moment
	// later.
	if err := n.nc.FlushTimeout(n.cfg.RequestTimeout); err != nil {
		n.log.Debug("cluster: join room: flush", "room", room, "err", natsError(err))
	}
	return func() {
		n.mu.Lock()
		delete(n.rooms, rs)
		n.mu.Unlock()
		rs.stop()
		n.dropSeen.Delete(sub)
	}, nil
}

// stop unsubscribes and waits for a running handler.
func (rs *roomSub) stop() {
	rs.once.Do(func() {
		rs.left.Store(true)
		_ = rs.sub.Unsubscribe()
		rs.call.Lock() // waits for a running handler
		rs.call.Unlock()
	})
}

func (n *Node) onRoomMessage(rs *roomSub, msg *nats.Msg) {
	env, ok := n.accept(msg.Subject, msg.Data, true)
	if !ok {
		return
	}
	if env.Room != rs.room {
		n.drop(DropRoomMismatch, msg.Subject, env.Room)
		return
	}
	rs.call.Lock()
	defer rs.call.Unlock()
	if rs.left.Load() {
		n.drop(DropRoomMismatch, msg.Subject, "room left") // this node no longer hosts it
		return
	}
	n.metrics.in.WithLabelValues(env.Kind).Inc()
	rs.h(Message{Room: env.Room, Node: env.Node, Kind: env.Kind, Seq: env.Seq, Data: env.Data})
}

// Publish sends a room event to the other nodes that joined the room
// (whether or not this node joined it). data is marshalled to JSON. With
// the NATS connection down it fails with ErrNotConnected: nothing is
// queued, since room state is re-announced anyway.
func (n *Node) Publish(room, kind string, data any) error {
	if !validRoom(room) {
		return fmt.Errorf("%w: room name %q", ErrBadArgument, room)
	}
	if !validKind(kind) {
		return fmt.Errorf("%w: kind %q", ErrBadArgument, kind)
	}
	if n.isClosed() {
		return ErrClosed
	}
	if err := n.publish(n.subj.room(room), room, kind, data); err != nil {
		return fmt.Errorf("cluster: publish %q to room %q: %w", kind, room, err)
	}
	return nil
}
