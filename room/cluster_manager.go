package room

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/room/cluster"
	"github.com/confab-sfu/confab/sfu"
)

// A Manager with Config.Cluster is one node of a cluster: its rooms are
// parts of rooms that span nodes (cluster_room.go), media crosses between
// nodes on relay links (cluster_relay.go, cluster_pull.go), and moderators
// act on members of other nodes through requests to those nodes
// (cluster_moderation.go). Without it nothing here runs.

// clusterStartTimeout bounds joining the cluster when the Manager starts:
// an unreachable NATS fails the start rather than hanging it.
const clusterStartTimeout = 30 * time.Second

// defaultDeadAfter is room/cluster's default DeadAfter, used when the
// config leaves it zero: remote parts of rooms expire after it too.
const defaultDeadAfter = 4 * time.Second

// clusterNode is a Manager's part in the cluster.
type clusterNode struct {
	m     *Manager
	node  *cluster.Node
	links *relayLinks
	cpu   *cluster.CPUSampler
	// dead is how long a node's part of a room lives without a refresh;
	// each room re-announces its own part every dead/3.
	dead time.Duration
	// epoch and version order this node's states of a room (nodeState).
	epoch   int64
	version atomic.Uint64

	stop chan struct{}
	wg   sync.WaitGroup // the maintenance loop
}

// startCluster joins the cluster described by cfg; the Manager's rooms
// are then shared with the other nodes.
func startCluster(m *Manager, cfg cluster.Config) (*clusterNode, error) {
	c := &clusterNode{m: m, cpu: cluster.NewCPUSampler(), dead: cfg.DeadAfter,
		epoch: time.Now().UnixNano(), stop: make(chan struct{})}
	if c.dead <= 0 {
		c.dead = defaultDeadAfter
	}
	c.links = newRelayLinks(c)
	if cfg.Logger == nil {
		cfg.Logger = m.log
	}
	down := cfg.OnNodeDown
	cfg.OnNodeDown = func(info cluster.NodeInfo, why cluster.DownReason) {
		c.nodeDown(info.ID)
		if down != nil {
			down(info, why)
		}
	}
	if cfg.Load == nil {
		cfg.Load = c.load
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()
	node, err := cluster.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("join the cluster: %w", err)
	}
	c.node = node
	handleAs(c, reqSnapshot, c.serveSnapshot)
	handleAs(c, reqOffer, c.links.serveOffer)
	handleAs(c, reqWant, c.links.serveWant)
	handleAs(c, reqMute, c.serveMute)
	handleAs(c, reqRemove, c.serveRemove)
	handleAs(c, reqPromote, c.servePromote)
	c.wg.Add(1)
	go c.maintain()
	return c, nil
}

// handleAs installs a request handler that decodes its data into T.
func handleAs[T any](c *clusterNode, kind string, fn func(ctx context.Context, from string, req T) (any, error)) {
	c.node.Handle(kind, func(ctx context.Context, from string, data json.RawMessage) (any, error) {
		var req T
		if err := json.Unmarshal(data, &req); err != nil {
			metricClusterDropped.WithLabelValues(dropBadData).Inc()
			return nil, badData(kind, err)
		}
		return fn(ctx, from, req)
	})
}

// close leaves the cluster: relay links close, then the node says bye.
func (c *clusterNode) close() error {
	close(c.stop)
	c.wg.Wait()
	c.links.closeAll()
	return c.node.Close()
}

// nextVersion numbers this node's next state of any room.
func (c *clusterNode) nextVersion() uint64 { return c.version.Add(1) }

// nodeDown drops what another node had here: its part of every room and
// its relay links.
func (c *clusterNode) nodeDown(id string) {
	for _, r := range c.m.roomList() {
		r.dropNode(id)
	}
	c.links.closeNode(id)
}

// load is what this node reports in its heartbeats.
func (c *clusterNode) load() cluster.Load {
	_, participants := c.m.Counts()
	return cluster.Load{Participants: participants, Streams: c.m.forwardedStreams() + c.links.layersOut(),
		CPU: c.cpu.Fraction()}
}

// maintain keeps relay links in line with what was asked of them.
func (c *clusterNode) maintain() {
	defer c.wg.Done()
	t := time.NewTicker(relayMaintainEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.links.reapply()
		c.links.sweepOrphans(c.stop)
	}
}

// serveSnapshot answers a node that opens a room: this node's part of it.
func (c *clusterNode) serveSnapshot(_ context.Context, _ string, req roomRequest) (any, error) {
	if r := c.m.Room(req.Room); r != nil && r.cl != nil {
		return r.localState(true), nil
	}
	return nodeState{Hosted: false, Epoch: c.epoch, Version: c.nextVersion()}, nil
}

// roomList returns the rooms of this node.
func (m *Manager) roomList() []*Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		out = append(out, r)
	}
	return out
}

// forwardedStreams counts the tracks this node forwards to its own
// participants and viewers (one per subscriber and track).
func (m *Manager) forwardedStreams() int {
	type downs interface{ DownTracks() []*sfu.DownTrack }
	n := 0
	for _, r := range m.roomList() {
		for _, p := range r.localPeers() {
			if d, ok := p.(downs); ok {
				n += len(d.DownTracks())
			}
		}
	}
	return n
}

// localPeers are the media connections of the room's own participants
// and viewers.
func (r *Room) localPeers() []Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Peer, 0, len(r.participants)+len(r.watchers))
	for _, p := range r.participants {
		out = append(out, p.peer)
	}
	for w := range r.watchers {
		out = append(out, w.peer)
	}
	return out
}

// Cluster is the node this Manager runs as, nil on a single server.
func (m *Manager) Cluster() *cluster.Node {
	if m.cl == nil {
		return nil
	}
	return m.cl.node
}
