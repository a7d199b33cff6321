package room

import (
	"slices"
	"time"

	"github.com/confab-sfu/confab/sfu"
	"github.com/confab-sfu/confab/signal"
	"github.com/prometheus/client_golang/prometheus"
)

// Dynacast: a simulcast layer nobody needs is paused at its publisher,
// which saves its uplink and this server's receive path (in a lecture
// whose viewers all watch small tiles, two of three layers). Every
// speakerInterval the room compares what each simulcast track's
// subscribers want (sfu's WantedLayers: members, WHEP viewers, and the
// relays that carry the track to other nodes) with what its publisher
// was told to send, and sends the publisher publish_layers when that
// changes.
//
// A layer resumes as soon as someone wants it (its publisher starts it
// with a keyframe, so it reaches the subscriber within one keyframe
// interval); it pauses only after nobody has wanted it for
// layerIdleBeforePause, so a subscriber moving between tile sizes does not
// toggle its publisher's encoders. The lowest layer is never paused: a
// joiner starts on it at once, and every subscriber falls back to it.
// WHIP publishers have no signaling channel and keep sending everything.

// layerIdleBeforePause is how long nobody may want a layer before its
// publisher is told to pause it.
const layerIdleBeforePause = 3 * time.Second

var metricPublisherLayerChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "confab_publisher_layer_changes_total",
	Help: "Simulcast layers publishers were told to pause or resume because of what their subscribers need (dynacast)."},
	[]string{"change"})

func init() { prometheus.MustRegister(metricPublisherLayerChanges) }

// layerDemand is what a local simulcast track tells of its layers
// (*sfu.Receiver): relayed tracks are paused at their own node.
type layerDemand interface {
	DeclaredLayers() []int
	WantedLayers() []int
	PublishedRIDs(layers []int) []string
}

// publisherLayers is what the room last told one track's publisher.
type publisherLayers struct {
	active    []int                   // the layers it was told to send
	idleSince [sfuMaxLayers]time.Time // since when an active layer is unwanted (zero: wanted)
}

// sfuMaxLayers bounds layer indexes (sfu has at most three).
const sfuMaxLayers = 3

// dynacast holds publisherLayers per track; the room's observer goroutine
// owns it.
type dynacast map[sfu.TrackID]*publisherLayers

// observeLayerDemand tells publishers about layers that became wanted or
// stayed unwanted long enough.
func (r *Room) observeLayerDemand(dc dynacast, now time.Time) {
	type notice struct {
		to              *participant
		msg             *signal.Message
		paused, resumed int
	}
	var notices []notice
	r.mu.Lock()
	for id, t := range r.tracks {
		d, ok := t.up.(layerDemand)
		if !ok || t.owner == nil || t.owner.node != "" || t.owner.out == nil {
			continue
		}
		declared := d.DeclaredLayers()
		if len(declared) < 2 {
			continue
		}
		st := dc[id]
		if st == nil {
			st = &publisherLayers{active: declared}
			dc[id] = st
		}
		next := st.next(declared, d.WantedLayers(), now)
		if slices.Equal(next, st.active) {
			continue
		}
		n := notice{to: t.owner, msg: &signal.Message{Type: signal.TypePublishLayers, TrackID: string(id),
			Track: &signal.Track{ID: t.info.MSID, RIDs: d.PublishedRIDs(next)}}}
		for _, l := range st.active {
			if !slices.Contains(next, l) {
				n.paused++
			}
		}
		n.resumed = len(next) - (len(st.active) - n.paused)
		st.active = next
		notices = append(notices, n)
	}
	for id := range dc {
		if r.tracks[id] == nil {
			delete(dc, id)
		}
	}
	r.mu.Unlock()
	for _, n := range notices {
		n.to.log.Info("publisher layers", "track", n.msg.TrackID, "rids", n.msg.Track.RIDs)
		metricPublisherLayerChanges.WithLabelValues("pause").Add(float64(n.paused))
		metricPublisherLayerChanges.WithLabelValues("resume").Add(float64(n.resumed))
		n.to.send(n.msg)
	}
}

// next returns the layers the publisher should send now: the lowest, the
// wanted ones, and those unwanted for less than layerIdleBeforePause.
func (st *publisherLayers) next(declared, wanted []int, now time.Time) []int {
	var out []int
	for _, l := range declared {
		if l < 0 || l >= sfuMaxLayers {
			continue
		}
		switch {
		case l == declared[0] || slices.Contains(wanted, l):
			st.idleSince[l] = time.Time{}
			out = append(out, l)
		case !slices.Contains(st.active, l):
			// Paused, and still unwanted.
		case st.idleSince[l].IsZero():
			st.idleSince[l] = now
			out = append(out, l)
		case now.Sub(st.idleSince[l]) < layerIdleBeforePause:
			out = append(out, l)
		}
	}
	return out
}
