package room

import (
	"context"
	"fmt"

	"github.com/confab-sfu/confab/room/record"
	"github.com/confab-sfu/confab/sfu"
)

// Tracks lists the room's tracks (this node's and other nodes'), for the
// external tests.
func (r *Room) Tracks() map[sfu.TrackID]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[sfu.TrackID]string{}
	for id, t := range r.tracks {
		out[id] = t.owner.node
	}
	return out
}

// SetRecordFiles makes the manager's recordings create their media files
// with create (a test's failing disk).
func (m *Manager) SetRecordFiles(create func(path string) (record.File, error)) {
	m.recordFile = create
}

// ExpireAndRelearn makes the room forget node's part as when it expires
// (nothing heard from the node within DeadAfter: its members leave, the
// members here stop receiving its tracks) and take the node's current
// state at once, as when its next announcement arrives right after. Both
// happen under the room's lock, so that nothing (the relay maintenance's
// orphan sweep in particular) sees the room in between.
func (r *Room) ExpireAndRelearn(ctx context.Context, node string) error {
	var st nodeState
	if err := r.cl.c.node.Request(ctx, node, reqSnapshot, roomRequest{Room: r.name}, &st); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rn := r.cl.remotes[node]
	if rn == nil {
		return fmt.Errorf("room %s has no part of node %s", r.name, node)
	}
	// Unsubscribing under the room's lock is what subscribing does anyway.
	unsubscribeAll(r.dropRemoteLocked(rn))
	unsubscribeAll(r.applyStateLocked(node, &st))
	return nil
}

// HoldRelayWants makes this node hold other nodes' relay requests: the
// track of each is told on calls as it arrives, then waits until release (and is served
// as usual) or until its requester gave up. release restores the usual
// handler.
func (m *Manager) HoldRelayWants() (calls <-chan sfu.TrackID, release func()) {
	ch := make(chan sfu.TrackID, 16)
	released := make(chan struct{})
	handleAs(m.cl, reqWant, func(ctx context.Context, from string, req wantRequest) (any, error) {
		select {
		case ch <- req.Track:
		default:
		}
		select {
		case <-released:
			return m.cl.links.serveWant(ctx, from, req)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	return ch, func() {
		handleAs(m.cl, reqWant, m.cl.links.serveWant)
		close(released)
	}
}
