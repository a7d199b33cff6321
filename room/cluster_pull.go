package room

import (
	"context"
	"slices"
	"time"

	"github.com/confab-sfu/confab/sfu"
	"github.com/pion/webrtc/v4"
)

// Pulling remote tracks: a node asks a track's node to relay it while at
// least one of its own participants (or viewers) receives it, and only
// the layers they could use (sfu's WantedLayers, plus layer 0, the one
// every subscriber falls back to). The track crosses once, whatever the
// number of subscribers here; they all receive from its relayed Receiver.

// pullEvery is how often a room re-evaluates what it pulls, and so how
// soon layers follow its subscribers' changes.
const pullEvery = 500 * time.Millisecond

// pullRetry is how long a pull may go unanswered by a relayed track before
// it is asked again (the link failed before the track arrived).
const pullRetry = 10 * time.Second

// pullTimeout bounds one request to a track's node.
const pullTimeout = 3 * time.Second

// relayWaitForViewer bounds how long a WHEP viewer's answer waits for the
// tracks it watches to be relayed from their node.
const relayWaitForViewer = 5 * time.Second

// pullBackoff is how long a room waits after a failed request before it
// asks the same node again (it may be gone: its part expires soon).
const pullBackoff = time.Second

// pull is what this node asked of a remote track's node.
type pull struct {
	layers []int // nil: nothing
	at     time.Time
	failed bool // the last request failed (at says when)
}

// pullChange is one request to make.
type pullChange struct {
	node   string
	track  sfu.TrackID
	layers []int
	prev   pull
}

// evaluatePulls asks remote tracks' nodes for what this node's members
// need now, and tells them to stop what nobody here receives.
func (r *Room) evaluatePulls() {
	type candidate struct {
		node   string
		id     sfu.TrackID
		kind   webrtc.RTPCodecType
		wanted bool
		recv   *sfu.Receiver
		prev   pull
	}
	r.mu.Lock()
	var cands []candidate
	for id, t := range r.tracks {
		up, ok := t.up.(*remoteUp)
		if !ok {
			continue
		}
		var prev pull
		if p := r.cl.pulls[id]; p != nil {
			prev = *p
		}
		recv := up.relayed()
		if recv != nil && ended(recv) {
			// It ended before the room heard (its OnClose was taken
			// already): let go of it as detachRelayed would.
			defer r.detachRelayed(recv)
			recv = nil
		}
		cands = append(cands, candidate{node: up.node, id: id, kind: up.info.Kind,
			wanted: r.receivedHereLocked(id), recv: recv, prev: prev})
	}
	r.mu.Unlock()
	for i := range cands {
		if c := &cands[i]; c.wanted && c.recv == nil {
			c.recv = r.adoptRelayed(c.node, c.id)
		}
	}
	now := time.Now()
	var changes []pullChange
	for _, c := range cands {
		var layers []int
		if c.wanted {
			layers = wantedLayers(c.kind, c.recv)
		}
		stale := c.wanted && c.recv == nil && now.Sub(c.prev.at) > pullRetry
		switch {
		case c.prev.failed && now.Sub(c.prev.at) < pullBackoff:
			continue
		case slices.Equal(layers, c.prev.layers) && !stale && !c.prev.failed:
			continue
		}
		changes = append(changes, pullChange{node: c.node, track: c.id, layers: layers, prev: c.prev})
	}
	for _, ch := range changes {
		r.askRelay(ch, now)
	}
}

// ended reports whether a Receiver has ended.
func ended(recv *sfu.Receiver) bool {
	select {
	case <-recv.Done():
		return true
	default:
		return false
	}
}

// stopPulls tells the nodes this room pulls from to stop: the room is
// closing here.
func (r *Room) stopPulls() {
	r.mu.Lock()
	var stops []pullChange
	for id := range r.cl.pulls {
		if t := r.tracks[id]; t != nil {
			stops = append(stops, pullChange{node: t.owner.node, track: id})
		}
	}
	r.mu.Unlock()
	for _, ch := range stops {
		r.askRelay(ch, time.Now())
	}
}

// wantedLayers is what to pull of a track: before it arrives, every layer
// (subscribers ask for the best by default); then the layers its
// subscribers here could use, and layer 0.
func wantedLayers(kind webrtc.RTPCodecType, recv *sfu.Receiver) []int {
	if kind == webrtc.RTPCodecTypeAudio {
		return []int{0}
	}
	if recv == nil {
		return []int{0, 1, 2}
	}
	layers := recv.WantedLayers()
	if !slices.Contains(layers, 0) {
		layers = append([]int{0}, layers...)
	}
	return layers
}

// askRelay asks a track's node to relay the given layers (none: stop),
// and records what was asked once it agreed.
func (r *Room) askRelay(ch pullChange, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), pullTimeout)
	defer cancel()
	err := r.cl.c.node.Request(ctx, ch.node, reqWant, wantRequest{Room: r.name, Track: ch.track, Layers: ch.layers}, nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.tracks[ch.track]; !ok {
		return
	}
	if err != nil {
		r.log.Debug("cluster: relay request", "node", ch.node, "track", string(ch.track), "layers", ch.layers, "err", err)
		failed := ch.prev
		failed.at, failed.failed = now, true
		r.cl.pulls[ch.track] = &failed
		return
	}
	if ch.layers == nil {
		delete(r.cl.pulls, ch.track)
		return
	}
	r.cl.pulls[ch.track] = &pull{layers: ch.layers, at: now}
}

// receivedHereLocked reports whether a participant or viewer of this node
// receives the track (or will, once it is relayed).
func (r *Room) receivedHereLocked(id sfu.TrackID) bool {
	for _, p := range r.participants {
		if p.permissions().Subscribe {
			return true
		}
	}
	for _, ids := range r.watchers {
		if slices.Contains(ids, id) {
			return true
		}
	}
	return false
}

// claims reports whether this room pulls a track of node: it asked for
// it, or is about to (a relay may arrive before the reply to the ask).
func (r *Room) claims(node string, id sfu.TrackID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tracks[id]
	if t == nil || t.owner.node != node {
		return false
	}
	return r.cl.pulls[id] != nil || r.receivedHereLocked(id)
}

// attachRelayed makes a track relayed from node this room's source of it:
// the local members and viewers subscribe. It reports whether the room
// has that track.
func (r *Room) attachRelayed(node string, recv *sfu.Receiver) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tracks[recv.ID()]
	if t == nil || t.owner.node != node {
		return false
	}
	up := t.up.(*remoteUp)
	if !up.attach(recv) {
		return false
	}
	recv.OnClose(func() { r.detachRelayed(recv) })
	r.recordTrackLocked(t, sourceSettle)
	for _, p := range r.participants {
		p.subscribe(recv.ID())
	}
	close(r.cl.relayArrived)
	r.cl.relayArrived = make(chan struct{})
	return true
}

// adoptRelayed attaches a track that node relays here already but that
// no track of the room holds: the room forgot the track (its node's part
// expired) and learnt it again before the link stopped relaying it. The
// origin sees the same request as before, so it offers nothing new and the
// track would never arrive again through attachRelayed. It returns the
// Receiver attached, or nil.
func (r *Room) adoptRelayed(node string, id sfu.TrackID) *sfu.Receiver {
	recv := r.cl.c.links.relayedFrom(node, id)
	if recv == nil || ended(recv) || !r.attachRelayed(node, recv) {
		return nil
	}
	r.log.Debug("cluster: relayed track adopted again", "node", node, "track", string(id))
	return recv
}

// detachRelayed lets go of a relayed Receiver that ended (the link closed,
// or the origin stopped relaying): the local subscriptions end, and the
// track is pulled again if members here still receive it.
func (r *Room) detachRelayed(recv *sfu.Receiver) {
	r.mu.Lock()
	id := recv.ID()
	t := r.tracks[id]
	var ended []unsubscription
	if t != nil {
		if up, ok := t.up.(*remoteUp); ok && up.detach(recv) {
			ended = r.subscriptionsLocked(id)
			r.recordTrackLocked(t, sourceSettle)
			delete(r.cl.pulls, id)
			r.cl.poke()
		}
	}
	r.mu.Unlock()
	unsubscribeAll(ended)
}

// awaitRelayed waits (bounded by ctx) until the remote tracks among ids
// are relayed here: a WHEP viewer is answered with what it watches.
func (r *Room) awaitRelayed(ctx context.Context, ids []sfu.TrackID) {
	if r.cl == nil {
		return
	}
	for {
		r.mu.Lock()
		missing := false
		for _, id := range ids {
			if t := r.tracks[id]; t != nil {
				if up, ok := t.up.(*remoteUp); ok && up.relayed() == nil {
					missing = true
				}
			}
		}
		arrived := r.cl.relayArrived
		r.cl.poke()
		r.mu.Unlock()
		if !missing {
			return
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return
		}
	}
}
