package cluster

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// NodeInfo is what the cluster knows about one live node.
type NodeInfo struct {
	// ID is the node's NodeID.
	ID string `json:"id"`
	// URL is the node's AdvertiseURL.
	URL string `json:"url"`
	// Started is when the node's process started (the node's clock);
	// a new value under the same ID means the node restarted.
	Started time.Time `json:"started"`
	// Load is the load in the latest heartbeat.
	Load Load `json:"load"`
	// LastSeen is when the latest heartbeat arrived (this node's clock).
	LastSeen time.Time `json:"-"`
}

// DownReason says why a node left the table.
type DownReason string

const (
	// DownBye: the node said goodbye (it closed cleanly).
	DownBye DownReason = "bye"
	// DownSilent: no heartbeat from the node for DeadAfter.
	DownSilent DownReason = "silent"
	// DownRestarted: the node came back with a new start time before it
	// was declared silent; OnNodeUp follows at once.
	DownRestarted DownReason = "restarted"
	// DownDisconnected: this node was cut off from NATS for DeadAfter,
	// so it can vouch for no one; the node reappears after reconnection.
	DownDisconnected DownReason = "disconnected"
)

type nodeEvent struct {
	info   NodeInfo
	up     bool
	reason DownReason
}

// table is the live-node table. Changes queue events that one goroutine
// (run) hands to the callbacks in order, outside the lock.
type table struct {
	mu     sync.Mutex
	nodes  map[string]NodeInfo
	gone   map[string]goneNode // nodes that said bye, against late heartbeats
	events []nodeEvent
	wake   chan struct{}
}

// goneNode remembers a node's bye so that a heartbeat that was overtaken
// by the bye (they travel on different subjects) does not bring it back.
type goneNode struct {
	started time.Time
	until   time.Time
}

func newTable() *table {
	return &table{nodes: map[string]NodeInfo{}, gone: map[string]goneNode{}, wake: make(chan struct{}, 1)}
}

// seen records a heartbeat.
func (t *table) seen(info NodeInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g, ok := t.gone[info.ID]; ok {
		if g.started.Equal(info.Started) && info.LastSeen.Before(g.until) {
			return
		}
		delete(t.gone, info.ID)
	}
	old, known := t.nodes[info.ID]
	t.nodes[info.ID] = info
	switch {
	case !known:
		t.push(nodeEvent{info: info, up: true})
	case !old.Started.Equal(info.Started):
		t.push(nodeEvent{info: old, reason: DownRestarted})
		t.push(nodeEvent{info: info, up: true})
	}
}

// remove drops a node that said bye; it reports whether it was known.
func (t *table) remove(id string, started time.Time, hold time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gone[id] = goneNode{started: started, until: time.Now().Add(hold)}
	old, ok := t.nodes[id]
	if !ok {
		return false
	}
	delete(t.nodes, id)
	t.push(nodeEvent{info: old, reason: DownBye})
	return true
}

// expire drops nodes last seen before cutoff, and forgets byes that are
// old enough.
func (t *table) expire(now, cutoff time.Time, reason DownReason) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for id, info := range t.nodes {
		if info.LastSeen.Before(cutoff) {
			delete(t.nodes, id)
			t.push(nodeEvent{info: info, reason: reason})
			n++
		}
	}
	for id, g := range t.gone {
		if now.After(g.until) {
			delete(t.gone, id)
		}
	}
	return n
}

func (t *table) known(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.nodes[id]
	return ok
}

func (t *table) get(id string) (NodeInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	info, ok := t.nodes[id]
	return info, ok
}

func (t *table) list() []NodeInfo {
	t.mu.Lock()
	out := make([]NodeInfo, 0, len(t.nodes))
	for _, info := range t.nodes {
		out = append(out, info)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (t *table) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.nodes)
}

// push queues an event; t.mu is held.
func (t *table) push(e nodeEvent) {
	t.events = append(t.events, e)
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// run delivers events until done is closed.
func (t *table) run(done <-chan struct{}, up func(NodeInfo), down func(NodeInfo, DownReason)) {
	for {
		select {
		case <-done:
			return
		case <-t.wake:
		}
		t.mu.Lock()
		events := t.events
		t.events = nil
		t.mu.Unlock()
		for _, e := range events {
			if e.up {
				up(e.info)
			} else {
				down(e.info, e.reason)
			}
		}
	}
}
