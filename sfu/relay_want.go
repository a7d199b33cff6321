package sfu

import "github.com/pion/webrtc/v4"

// WantedLayers returns the layers of r its subscribers could use now,
// lowest first: what a node pulling a relayed track asks the origin for.
// A subscriber wants the layer it asked for (after its size cap), not
// what arrives now: a layer that is not relayed cannot be chosen, so
// judging by what arrives would never ask for more. Only a subscriber
// whose bandwidth holds it below a layer that does arrive wants less: the
// layer above its bandwidth layer, which its allocator probes toward and
// upgrades to when the link allows. Asking for that one layer more, and
// not for everything it asked for, keeps the choice stable: dropping the
// layers it cannot take does not make it look unconstrained again.
// Subscribers who paused want nothing; audio is layer 0; a recording
// wants the top layer. Load shedding
// (shed.go) lowers what is wanted as it lowers what is forwarded.
func (r *Receiver) WantedLayers() []int {
	var want [maxLayers]bool
	for _, d := range r.DownTracks() {
		if l := d.wantedLayer(); l >= 0 {
			want[l] = true
		}
	}
	// A sink (a recording) takes the best layer the publisher has.
	if sinks := r.sinks.Load(); sinks != nil && len(*sinks) > 0 {
		top := 0
		if declared := r.DeclaredLayers(); len(declared) > 0 {
			top = declared[len(declared)-1]
		}
		want[top] = true
	}
	var out []int
	for l, ok := range want {
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// wantedLayer is the layer one subscriber could use (see WantedLayers),
// noLayer when it wants none.
func (d *DownTrack) wantedLayer() int8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed || d.paused:
		return noLayer
	case d.recv.kind == webrtc.RTPCodecTypeAudio:
		return 0
	case d.pinned:
		return d.maxLayer
	}
	// What the node's load shedding holds back is not wanted either: so
	// shedding also stops the publisher sending it (dynacast).
	limit, off := d.shedCap()
	if off {
		return noLayer
	}
	asked := min(d.maxLayer, limit)
	estimated := d.alloc != nil && d.alloc.lastEstimate() > 0
	if !estimated || d.bwLayer >= d.recv.bestLayerAtMost(asked) {
		return asked
	}
	return min(asked, d.bwLayer+1)
}
