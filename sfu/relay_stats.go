package sfu

import (
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// RelayStats are a relay link's counters, or an engine's totals with one
// node in one direction. Counters only grow: a stopped layer's and a closed
// link's are kept.
type RelayStats struct {
	Links  int // open links (Engine.RelayTotals)
	Tracks int // tracks relayed now
	Layers int // layers (media sections) relayed now
	// Packets and Bytes (headers included) count RTP: out, each packet
	// forwarded once (resends are in Resent); in, every packet that
	// arrived, resends included.
	Packets uint64
	Bytes   uint64
	// Lost counts relayed packets lost on the link: out, the cumulative
	// loss the other node's receiver reports give (what NACKs had not
	// repaired by report time); in, sequence numbers skipped on arrival
	// (before repair).
	Lost   uint64
	NACKs  uint64 // out: packets the other node asked for again
	Resent uint64 // out: of those, packets resent from the cache
	PLIs   uint64 // out: keyframe requests from the other node
}

// RelayLayerStats are the counters of one relayed layer.
type RelayLayerStats struct {
	Track TrackID
	Layer int
	SSRC  uint32 // on the link
	RelayStats
}

// addCounters adds o's counters (not its gauges) to s.
func (s *RelayStats) addCounters(o RelayStats) {
	s.Packets += o.Packets
	s.Bytes += o.Bytes
	s.Lost += o.Lost
	s.NACKs += o.NACKs
	s.Resent += o.Resent
	s.PLIs += o.PLIs
}

// downTrackRelayStats reads a relayed layer's counters on the sending side.
func downTrackRelayStats(d *DownTrack) RelayStats {
	st := d.Stats()
	return RelayStats{Packets: st.Packets, Bytes: st.Bytes, NACKs: st.NACKs, Resent: st.Resent, PLIs: st.PLIs,
		Lost: uint64(d.lost.Load())}
}

// layerRelayStats reads a relayed layer's counters on the receiving side.
func layerRelayStats(l *recvLayer) RelayStats {
	return RelayStats{Packets: l.packets.Load(), Bytes: l.bytes.Load(), Lost: l.gaps.Load()}
}

// noteSeq counts the sequence numbers a layer skips on arrival. Late and
// repeated packets count nothing. It runs on the layer's reader goroutine.
func (l *recvLayer) noteSeq(seq uint16) {
	if !l.seqSeen {
		l.seqSeen = true
		l.maxSeq = seq
		return
	}
	diff := seq - l.maxSeq
	if diff == 0 || diff >= 0x8000 {
		return
	}
	if diff > 1 {
		l.gaps.Add(uint64(diff - 1))
	}
	l.maxSeq = seq
}

// noteReport keeps the cumulative loss a receiver report gives for this
// track.
func (d *DownTrack) noteReport(rr *rtcp.ReceiverReport) {
	d.mu.Lock()
	ssrc := d.ssrc
	d.mu.Unlock()
	for _, r := range rr.Reports {
		if r.SSRC == ssrc {
			d.lost.Store(r.TotalLost)
		}
	}
}

// audioLevelID returns the id of the audio level extension, 0 when absent.
func audioLevelID(exts []webrtc.RTPHeaderExtensionParameter) uint8 {
	for _, e := range exts {
		if e.URI == audioLevelURI {
			return uint8(e.ID)
		}
	}
	return 0
}

// copyAudioLevel carries the publisher's audio level over a relay link, so
// the other node's Receiver knows it too. It allocates nothing: the
// header's extension slice is reused and the value points into p.
func (d *DownTrack) copyAudioLevel(p *rtp.Packet) {
	if d.recv.levelExtID == 0 {
		return
	}
	if ext := p.GetExtension(d.recv.levelExtID); len(ext) > 0 {
		_ = d.hdr.SetExtension(d.levelOut, ext)
	}
}

// relayKey names a remote node and a direction ("out" or "in").
type relayKey struct{ node, dir string }

// relayLink is either end of a relay link.
type relayLink interface {
	key() relayKey
	Stats() RelayStats
}

// relayBook keeps the open links and the final counters of closed ones.
// The zero value is ready to use.
type relayBook struct {
	mu      sync.Mutex
	live    map[relayLink]struct{}
	retired map[relayKey]RelayStats
}

func (b *relayBook) add(l relayLink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.live == nil {
		b.live = map[relayLink]struct{}{}
	}
	b.live[l] = struct{}{}
}

// retire moves a closed link's counters into the totals of its node.
func (b *relayBook) retire(l relayLink) {
	st := l.Stats()
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.live[l]; !ok {
		return
	}
	delete(b.live, l)
	if b.retired == nil {
		b.retired = map[relayKey]RelayStats{}
	}
	t := b.retired[l.key()]
	t.addCounters(st)
	b.retired[l.key()] = t
}

// totals returns the counters per node and direction, open links included.
func (b *relayBook) totals() map[relayKey]RelayStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[relayKey]RelayStats, len(b.retired)+len(b.live))
	for k, st := range b.retired {
		out[k] = st
	}
	for l := range b.live {
		st := l.Stats()
		t := out[l.key()]
		t.Links++
		t.Tracks += st.Tracks
		t.Layers += st.Layers
		t.addCounters(st)
		out[l.key()] = t
	}
	return out
}

// RelayTotals returns this engine's relay counters with one other node:
// what it sends there (out) and what it receives from there (in), open and
// closed links together.
func (e *Engine) RelayTotals(node string) (out, in RelayStats) {
	t := e.relays.totals()
	return t[relayKey{node, "out"}], t[relayKey{node, "in"}]
}

// allRelays is every engine's links, for /metrics (one engine a process in
// production).
var allRelays relayBook

// relayCollector exports the relay counters, read when scraped: the packet
// path adds to nothing but the per-layer counters it keeps anyway.
type relayCollector struct{}

var (
	relayLabels      = []string{"node", "direction"}
	descRelayLinks   = prometheus.NewDesc("confab_relay_links", "Open relay links to (out) or from (in) another node.", relayLabels, nil)
	descRelayTracks  = prometheus.NewDesc("confab_relay_tracks", "Tracks relayed to (out) or from (in) another node now.", relayLabels, nil)
	descRelayPackets = prometheus.NewDesc("confab_relay_packets_total",
		"RTP packets relayed to (out, resends apart) or from (in, resends included) another node.", relayLabels, nil)
	descRelayBytes = prometheus.NewDesc("confab_relay_bytes_total", "RTP bytes relayed to (out) or from (in) another node.", relayLabels, nil)
	descRelayLost  = prometheus.NewDesc("confab_relay_packets_lost_total",
		"Relayed packets lost: out, as the other node's receiver reports count them; in, sequence numbers skipped on arrival (before NACK repair).",
		relayLabels, nil)
	descRelayResent = prometheus.NewDesc("confab_relay_retransmits_total",
		"Relayed packets resent from the cache for the other node's NACKs.", []string{"node"}, nil)
)

func (relayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRelayLinks, descRelayTracks, descRelayPackets, descRelayBytes, descRelayLost, descRelayResent} {
		ch <- d
	}
}

func (relayCollector) Collect(ch chan<- prometheus.Metric) {
	for k, st := range allRelays.totals() {
		ch <- prometheus.MustNewConstMetric(descRelayLinks, prometheus.GaugeValue, float64(st.Links), k.node, k.dir)
		ch <- prometheus.MustNewConstMetric(descRelayTracks, prometheus.GaugeValue, float64(st.Tracks), k.node, k.dir)
		ch <- prometheus.MustNewConstMetric(descRelayPackets, prometheus.CounterValue, float64(st.Packets), k.node, k.dir)
		ch <- prometheus.MustNewConstMetric(descRelayBytes, prometheus.CounterValue, float64(st.Bytes), k.node, k.dir)
		ch <- prometheus.MustNewConstMetric(descRelayLost, prometheus.CounterValue, float64(st.Lost), k.node, k.dir)
		if k.dir == "out" {
			ch <- prometheus.MustNewConstMetric(descRelayResent, prometheus.CounterValue, float64(st.Resent), k.node)
		}
	}
}

func init() { prometheus.MustRegister(relayCollector{}) }
