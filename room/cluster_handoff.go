package room

// A busy node hands a join to another node of the cluster (issue #17):
// the one that is not busy and forwards the fewest streams, as its latest
// heartbeat says. The client joins the same room there; the room then
// spans both nodes like any room.

// handoffURL is the advertised URL of the node to send a refused join
// to, or "" (a single server, no node with room, or none advertises a
// URL).
func (m *Manager) handoffURL() string {
	if m.cl == nil {
		return ""
	}
	best, streams := "", 0
	for _, n := range m.cl.node.Nodes() {
		if n.Load.Busy || n.URL == "" {
			continue
		}
		if best == "" || n.Load.Streams < streams {
			best, streams = n.URL, n.Load.Streams
		}
	}
	return best
}
