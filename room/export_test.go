package room

import "github.com/confab-sfu/confab/sfu"

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
