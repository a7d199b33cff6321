package sfu

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/sfu/codec"
	"github.com/confab-sfu/confab/sfu/packetcache"
	"github.com/confab-sfu/confab/sfu/vp8"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// maxLayers is the most simulcast layers a track may have.
const maxLayers = 3

// maxPacketSize bounds one RTP packet read, cached or written.
const maxPacketSize = packetcache.MaxPacketSize

// Cache sizes in packets: a few seconds of video at top bitrate, which
// covers any NACK round trip worth answering.
const (
	videoCacheSize = 1024
	audioCacheSize = 256
)

// layerStale is how long a layer may stay silent before subscribers fall
// back to a lower one.
const layerStale = 1500 * time.Millisecond

// recvLayer is one simulcast layer (or the only stream) of a published track.
type recvLayer struct {
	idx        int8
	rid        string
	track      *webrtc.TrackRemote
	ssrc       uint32
	cache      *packetcache.Cache
	lastKeyReq atomic.Int64 // unix nanos of the last PLI sent upstream
	lastPacket atomic.Int64 // unix nanos of the last media packet received
	packets    atomic.Uint64
	bytes      atomic.Uint64 // media only: the layer's cost, not the publisher's probes
	width      atomic.Uint32 // from the last VP8 keyframe
	height     atomic.Uint32
	bitrate    atomic.Int64 // smoothed bit/s, updated by monitor
	lastBytes  uint64       // monitor's previous sample

	// Owned by the layer's reader goroutine.
	vd  vp8.Descriptor // the current packet's descriptor, shared by its writers
	fan *fanOut        // writer pool, started when subscribers are many

	// Loss on arrival (noteSeq, relay_stats.go); the reader owns maxSeq.
	gaps    atomic.Uint64 // sequence numbers skipped (before any repair)
	maxSeq  uint16
	seqSeen bool
}

// Receiver is one published track: it reads each of its layers once,
// caches every packet once, and fans packets out to the DownTracks
// subscribed to it.
type Receiver struct {
	id        TrackID
	publisher PeerID
	streamID  string
	msid      string // the publisher's own track id
	source    Source
	kind      webrtc.RTPCodecType
	codec     webrtc.RTPCodecParameters
	ck        codec.Kind
	peer      *Peer
	simulcast bool
	keyEvery  time.Duration
	// relayed: the track arrives over a relay link (RelayIn), which ends it;
	// it outlives its layers while the relay swaps them.
	relayed bool

	mu      sync.Mutex
	layers  [maxLayers]atomic.Pointer[recvLayer]
	rids    []string
	dtMu    sync.Mutex                   // serializes changes to downTracks
	downs   atomic.Pointer[[]*DownTrack] // copy-on-write: the reader takes no lock
	sinks   atomic.Pointer[[]*Sink]      // likewise (sink.go)
	closed  atomic.Bool
	blocked atomic.Bool // a moderator stopped this track for everyone
	wg      sync.WaitGroup
	done    chan struct{}
	onClose []func()

	audioLevel atomic.Int32 // last audio level (dBov, 0 loudest .. 127 silent), -1 unknown
	loudness   atomic.Int64 // sum of (127 - level) since the last TakeLoudness
	levelCount atomic.Int64 // packets summed into loudness
	levelExtID uint8
}

// newReceiver creates the Receiver of a track p publishes, from its first
// layer, and starts its layer monitor.
func newReceiver(p *Peer, track *webrtc.TrackRemote, rtpRecv *webrtc.RTPReceiver, source Source) *Receiver {
	r := &Receiver{
		id:        TrackID(NewID("T")),
		publisher: p.id,
		streamID:  string(p.id),
		msid:      track.ID(),
		source:    source,
		kind:      track.Kind(),
		codec:     track.Codec(),
		ck:        codec.KindOf(track.Codec().MimeType),
		peer:      p,
		keyEvery:  p.engine.cfg.KeyframeInterval,
		done:      make(chan struct{}),
	}
	r.audioLevel.Store(-1)
	// pion lists a RID's track once more for every renegotiation that
	// happens before its first packet, so each RID is taken once.
	for _, t := range rtpRecv.Tracks() {
		if t.RID() != "" && !slices.Contains(r.rids, t.RID()) {
			r.rids = append(r.rids, t.RID())
		}
	}
	r.simulcast = len(r.rids) > 1
	if r.kind == webrtc.RTPCodecTypeAudio {
		for _, e := range rtpRecv.GetParameters().HeaderExtensions {
			if e.URI == audioLevelURI {
				r.levelExtID = uint8(e.ID)
			}
		}
	}
	metricPublishedTracks.Inc()
	p.engine.addTrack(r)
	r.wg.Add(1)
	go r.monitor()
	return r
}

// ID is the server-assigned track id, the same for every subscriber.
func (r *Receiver) ID() TrackID { return r.id }

// Kind is audio or video.
func (r *Receiver) Kind() webrtc.RTPCodecType { return r.kind }

// TrackInfo describes a published track: what subscribers are told of it.
type TrackInfo struct {
	ID    TrackID
	Kind  webrtc.RTPCodecType
	Codec string // mime type, e.g. video/VP8
	// Source is camera, microphone, screen or screen_audio.
	Source Source
	// MSID is the publisher's own id for the track (its MediaStreamTrack id).
	MSID string
	// StreamID is the msid stream id subscribers see (the publisher's id),
	// which groups its tracks for lip sync.
	StreamID string
}

// Info describes the track; it does not change while the track lives.
func (r *Receiver) Info() TrackInfo {
	return TrackInfo{ID: r.id, Kind: r.kind, Codec: r.codec.MimeType, Source: r.source, MSID: r.msid, StreamID: r.streamID}
}

// Done is closed when the track has ended and every reader has stopped.
func (r *Receiver) Done() <-chan struct{} { return r.done }

// OnClose registers f to run once when the track ends.
func (r *Receiver) OnClose(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onClose = append(r.onClose, f)
}

// Layers returns the indices of the layers received so far, lowest (0)
// first. The protocol's names for them are signal's.
func (r *Receiver) Layers() []int {
	var out []int
	for i := range r.layers {
		if r.layers[i].Load() != nil {
			out = append(out, i)
		}
	}
	return out
}

// layerIndexOfRID orders RIDs lowest quality first. Browsers use l/m/h or
// q/h/f; note "h" is the top of one scheme and the middle of the other.
func layerIndexOfRID(rid string, all []string) int8 {
	if rid == "" {
		return 0
	}
	qhf := slices.Contains(all, "q") || slices.Contains(all, "f")
	switch {
	case qhf && rid == "q", !qhf && rid == "l":
		return 0
	case qhf && rid == "h", !qhf && rid == "m":
		return 1
	case qhf && rid == "f", !qhf && rid == "h":
		return 2
	}
	// Unknown names: the order the SDP lists them in, lowest first.
	if i := slices.Index(all, rid); i >= 0 && i < maxLayers {
		return int8(i)
	}
	return 0
}

func (r *Receiver) layer(i int8) *recvLayer {
	if i < 0 || i >= maxLayers {
		return nil
	}
	return r.layers[i].Load()
}

// addLayer starts reading one layer of the track.
func (r *Receiver) addLayer(track *webrtc.TrackRemote) {
	r.addLayerAt(layerIndexOfRID(track.RID(), r.rids), track)
}

// addLayerAt starts reading track as layer idx; it returns the new layer,
// or nil when that layer is already read or the track has ended.
func (r *Receiver) addLayerAt(idx int8, track *webrtc.TrackRemote) *recvLayer {
	r.mu.Lock()
	if r.layers[idx].Load() != nil || r.closed.Load() {
		r.mu.Unlock()
		return nil
	}
	size := videoCacheSize
	if r.kind == webrtc.RTPCodecTypeAudio {
		size = audioCacheSize
	}
	l := &recvLayer{idx: idx, rid: track.RID(), track: track, ssrc: uint32(track.SSRC()), cache: packetcache.New(size)}
	l.lastPacket.Store(time.Now().UnixNano())
	r.layers[idx].Store(l)
	r.wg.Add(1)
	r.mu.Unlock()
	go r.readLoop(l)
	r.retarget()
	return l
}

// readLoop reads one layer until it ends: one read per packet, one copy into
// the cache, then a write to every subscribed DownTrack.
func (r *Receiver) readLoop(l *recvLayer) {
	defer r.layerEnded(l)
	defer func() {
		if l.fan != nil {
			l.fan.close()
		}
	}()
	buf := make([]byte, maxPacketSize)
	var pkt rtp.Packet
	for {
		n, _, err := l.track.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		r.handlePacket(l, buf[:n], &pkt, time.Now().UnixNano())
	}
}

// handlePacket caches one packet of a layer and forwards it to every
// subscribed DownTrack. It allocates nothing.
func (r *Receiver) handlePacket(l *recvLayer, raw []byte, pkt *rtp.Packet, now int64) {
	l.noteSeq(pkt.SequenceNumber)
	// A layer is alive while it carries media. Padding alone does not
	// count: browsers probe their uplink with padding on the top layer's
	// SSRC (no RTX is negotiated), and Firefox keeps doing so after it
	// stopped encoding that layer under CPU load; counted, the silent
	// layer would stay a target whose keyframe never comes.
	if len(pkt.Payload) > 0 {
		l.lastPacket.Store(now)
		l.bytes.Add(uint64(len(raw)))
	}
	l.packets.Add(1)
	l.cache.Store(pkt.SequenceNumber, raw, now)

	vd := &l.vd
	*vd = vp8.Descriptor{}
	key := true // any audio packet can start a stream
	if r.kind == webrtc.RTPCodecTypeVideo {
		if r.ck == codec.VP8 {
			*vd, _ = vp8.Parse(pkt.Payload)
			key = vd.Keyframe
			if key && vd.Width != 0 {
				l.width.Store(uint32(vd.Width))
				l.height.Store(uint32(vd.Height))
			}
		} else {
			key = codec.IsKeyframe(r.ck, pkt.Payload)
		}
	} else if r.levelExtID != 0 {
		if ext := pkt.GetExtension(r.levelExtID); len(ext) > 0 {
			lvl := int32(ext[0] & 0x7f)
			r.audioLevel.Store(lvl)
			r.loudness.Add(int64(127 - lvl))
			r.levelCount.Add(1)
		}
	}
	forwarded := 0
	if downs := r.downs.Load(); downs != nil && !r.blocked.Load() {
		if len(*downs) >= parallelFanOut {
			if l.fan == nil {
				l.fan = newFanOut()
			}
			forwarded = l.fan.write(*downs, l.idx, pkt, key, vd, now)
		} else {
			for _, d := range *downs {
				if d.writeRTP(l.idx, pkt, key, vd, now) {
					forwarded++
				}
			}
		}
	}
	r.writeSinks(l.idx, pkt, key) // after the subscribers: a sink never delays them
	metricPacketsIn.Inc()
	metricBytesIn.Add(float64(len(raw)))
	if forwarded > 0 {
		metricPacketsOut.Add(float64(forwarded))
		metricBytesOut.Add(float64(forwarded * len(raw)))
	}
}

// SetBlocked stops (or resumes) forwarding this track to every subscriber,
// whatever they asked for: a moderator's mute. On resume each subscriber
// restarts at a keyframe and its sequence numbers continue where they
// stopped, as after a pause.
func (r *Receiver) SetBlocked(b bool) {
	if r.blocked.Swap(b) == b || b {
		return
	}
	if downs := r.downs.Load(); downs != nil {
		for _, d := range *downs {
			d.resync()
		}
	}
	r.eachSink((*Sink).resync)
}

// Blocked reports whether a moderator stopped this track.
func (r *Receiver) Blocked() bool { return r.blocked.Load() }

// layerEnded runs when a layer's reader stops; the track ends with its
// last layer.
func (r *Receiver) layerEnded(l *recvLayer) {
	r.wg.Done()
	r.mu.Lock()
	if r.layers[l.idx].Load() == l {
		r.layers[l.idx].Store(nil)
	}
	remaining := 0
	for i := range r.layers {
		if r.layers[i].Load() != nil {
			remaining++
		}
	}
	r.mu.Unlock()
	if remaining == 0 && !r.relayed {
		r.close()
		return
	}
	r.retarget()
}

// close ends the track: nobody can subscribe to it any more, and
// subscribers are told through OnClose callbacks.
func (r *Receiver) close() {
	if !r.closed.CompareAndSwap(false, true) {
		return
	}
	r.peer.engine.removeTrack(r)
	if !r.relayed {
		metricPublishedTracks.Dec()
	}
	go func() {
		r.wg.Wait()
		r.mu.Lock()
		fs := r.onClose
		r.onClose = nil
		r.mu.Unlock()
		for _, f := range fs {
			f()
		}
		close(r.done)
	}()
}

// addDownTrack subscribes d; the reader sees it from its next packet.
func (r *Receiver) addDownTrack(d *DownTrack) {
	r.dtMu.Lock()
	defer r.dtMu.Unlock()
	var next []*DownTrack
	if cur := r.downs.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, d)
	r.downs.Store(&next)
	metricForwardedTracks.Inc()
}

// removeDownTrack unsubscribes d.
func (r *Receiver) removeDownTrack(d *DownTrack) {
	r.dtMu.Lock()
	defer r.dtMu.Unlock()
	cur := r.downs.Load()
	if cur == nil {
		return
	}
	i := slices.Index(*cur, d)
	if i < 0 {
		return
	}
	next := make([]*DownTrack, 0, len(*cur)-1)
	next = append(next, (*cur)[:i]...)
	next = append(next, (*cur)[i+1:]...)
	r.downs.Store(&next)
	metricForwardedTracks.Dec()
}

// DownTracks returns the current subscribers' DownTracks.
func (r *Receiver) DownTracks() []*DownTrack {
	if cur := r.downs.Load(); cur != nil {
		return *cur
	}
	return nil
}

// bestLayerAtMost returns the highest live layer not above want, or the
// lowest live layer when none is at or below want; noLayer when none.
func (r *Receiver) bestLayerAtMost(want int8) int8 {
	now := time.Now().UnixNano()
	lowest := noLayer
	for i := int8(maxLayers - 1); i >= 0; i-- {
		l := r.layers[i].Load()
		if l == nil || (r.simulcast && now-l.lastPacket.Load() > int64(layerStale)) {
			continue
		}
		if i <= want {
			return i
		}
		lowest = i
	}
	return lowest
}

// retarget re-evaluates every subscriber's target layer (a layer appeared,
// ended or went silent).
func (r *Receiver) retarget() {
	for _, d := range r.DownTracks() {
		d.updateTarget()
	}
	r.eachSink((*Sink).updateTarget)
}

// requestKeyframe asks the publisher for a keyframe of one layer, at most
// once per keyframe interval however many subscribers ask.
func (r *Receiver) requestKeyframe(layer int8) {
	l := r.layer(layer)
	if l == nil || r.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	now := time.Now().UnixNano()
	last := l.lastKeyReq.Load()
	if now-last < int64(r.keyEvery) || !l.lastKeyReq.CompareAndSwap(last, now) {
		return
	}
	metricPLIsSent.Inc()
	_ = r.peer.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: l.ssrc}})
}

// monitorEvery is how often layer rates and liveness are sampled.
const monitorEvery = 250 * time.Millisecond

// monitor measures each layer's bitrate and notices layers that stop
// arriving (a publisher whose uplink shrank drops its top layer), moving
// subscribers down at once.
func (r *Receiver) monitor() {
	defer r.wg.Done()
	t := time.NewTicker(monitorEvery)
	defer t.Stop()
	alive := [maxLayers]bool{}
	for {
		select {
		case <-t.C:
		case <-r.peer.closed:
			return
		}
		if r.closed.Load() {
			return
		}
		now := time.Now().UnixNano()
		changed := false
		for i := range r.layers {
			l := r.layers[i].Load()
			if l != nil {
				b := l.bytes.Load()
				sample := int64(b-l.lastBytes) * 8 * int64(time.Second/monitorEvery)
				l.lastBytes = b
				if prev := l.bitrate.Load(); prev == 0 {
					l.bitrate.Store(sample)
				} else {
					l.bitrate.Store((prev*3 + sample) / 4)
				}
			}
			a := l != nil && now-l.lastPacket.Load() <= int64(layerStale)
			if a != alive[i] {
				alive[i] = a
				changed = true
			}
		}
		if changed {
			r.retarget()
		}
	}
}

// AudioLevel returns the last audio level the publisher reported (0 loudest
// .. 127 silence), or -1 when unknown.
func (r *Receiver) AudioLevel() int { return int(r.audioLevel.Load()) }

// TakeLoudness returns the mean loudness (0 silence .. 127 loudest) of the
// audio packets since the previous call, and resets the window.
func (r *Receiver) TakeLoudness() int {
	n := r.levelCount.Swap(0)
	sum := r.loudness.Swap(0)
	if n <= 0 {
		return 0
	}
	return int(sum / n)
}

// LayerStats describes one received layer.
type LayerStats struct {
	Layer         int // 0 lowest
	RID           string
	Packets       uint64
	Bytes         uint64
	Width, Height int
}

// LayerStats returns per-layer counters.
func (r *Receiver) LayerStats() []LayerStats {
	var out []LayerStats
	for i := range r.layers {
		if l := r.layers[i].Load(); l != nil {
			out = append(out, LayerStats{Layer: i, RID: l.rid, Packets: l.packets.Load(), Bytes: l.bytes.Load(),
				Width: int(l.width.Load()), Height: int(l.height.Load())})
		}
	}
	return out
}

// layerForSize returns the highest layer whose resolution fits within
// maxW x maxH (0 means no limit), judged from the keyframes seen so far.
// A layer whose keyframe has not been seen yet is taken to be twice the
// size of the known layer below it (half the one above: the 4/2/1 scaling
// browsers use); with no size known at all, layers are assumed to fit.
// When none fits, the lowest. Layers the publisher declared count before
// they arrive: one it has not started (a browser starts its top layer late)
// or that dynacast paused must still be asked for, or it never comes.
func (r *Receiver) layerForSize(maxW, maxH int) int {
	var sizes [maxLayers][2]int
	var exists [maxLayers]bool
	for i := range r.layers {
		if l := r.layers[i].Load(); l != nil {
			sizes[i] = [2]int{int(l.width.Load()), int(l.height.Load())}
			exists[i] = true
		}
	}
	for _, i := range r.DeclaredLayers() {
		exists[i] = true
	}
	for i := maxLayers - 1; i >= 0; i-- {
		if !exists[i] {
			continue
		}
		w, h := guessSize(sizes, i)
		if (maxW == 0 || w <= maxW) && (maxH == 0 || h <= maxH) {
			return i
		}
	}
	return 0
}
