package sfu

// Dynacast: a simulcast layer that no subscriber anywhere needs costs the
// publisher's uplink and this server's receive path for nothing. The room
// asks a Receiver which of its layers are wanted (WantedLayers: local
// subscribers, WHEP viewers and the relays that carry it to other nodes)
// and tells the publisher which RIDs to keep sending; these map the two.

// PublishedRIDs returns the RIDs the publisher declared for the layers
// given (lowest first), or nil for a track without simulcast.
func (r *Receiver) PublishedRIDs(layers []int) []string {
	if !r.simulcast {
		return nil
	}
	var out []string
	for _, rid := range r.rids {
		idx := int(layerIndexOfRID(rid, r.rids))
		for _, l := range layers {
			if l == idx {
				out = append(out, rid)
				break
			}
		}
	}
	return out
}

// DeclaredLayers returns the layers the publisher declared (lowest first),
// whether or not they have arrived; nil for a track without simulcast.
func (r *Receiver) DeclaredLayers() []int {
	if !r.simulcast {
		return nil
	}
	var seen [maxLayers]bool
	for _, rid := range r.rids {
		seen[layerIndexOfRID(rid, r.rids)] = true
	}
	var out []int
	for l, ok := range seen {
		if ok {
			out = append(out, l)
		}
	}
	return out
}
