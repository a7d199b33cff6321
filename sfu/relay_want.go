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
// Subscribers who paused want nothing; audio is layer 0.
func (r *Receiver) WantedLayers() []int {
	var want [maxLayers]bool
	for _, d := range r.DownTracks() {
		if l := d.wantedLayer(); l >= 0 {
			want[l] = true
		}
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
	estimated := d.alloc != nil && d.alloc.lastEstimate() > 0
	if !estimated || d.bwLayer >= d.recv.bestLayerAtMost(d.maxLayer) {
		return d.maxLayer
	}
	return min(d.maxLayer, d.bwLayer+1)
}
