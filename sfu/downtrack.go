package sfu

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/sfu/codec"
	"github.com/confab-sfu/confab/sfu/rewrite"
	"github.com/confab-sfu/confab/sfu/vp8"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// noLayer marks a DownTrack that forwards nothing yet.
const noLayer int8 = -1

// paddingLayer marks a history entry of a padding probe (nothing to resend).
const paddingLayer int8 = -2

// paddingSize is the padding carried by one probe packet (the most RTP allows).
const paddingSize = 255

// How many sent packets a DownTrack remembers for NACKs: metadata only,
// the packets themselves live in the Receiver's cache. Powers of two
// (dividing the 16-bit sequence space). Video: 1024, 4 s at 250 packets
// a second; audio: 128, 2.5 s of 20 ms packets, in an eighth of the
// memory (each subscriber holds one history per track it receives).
const (
	videoHistory = 1024
	audioHistory = 128
)

// sentPacket maps one outgoing sequence number back to its source packet.
type sentPacket struct {
	dstSeq   uint16
	srcSeq   uint16
	layer    int8
	valid    bool
	resends  uint8
	resentAt uint8 // 10 ms ticks, wrapping (2.56 s, beyond maxResendAge)
	ts       uint32
	vp8      vp8.Offsets // how the VP8 descriptor was rewritten
}

// Retransmission limits. A receiver whose SRTP replay window has moved past
// a packet rejects its retransmission as a replay and keeps asking for it
// (pion's NACK generator asks as long as the packet is in its 512-packet
// window): without limits one burst of loss becomes a NACK storm that fills
// the link with retransmissions nobody can use.
const (
	maxResends   = 4                 // per packet
	minResendGap = 4                 // 10 ms ticks between resends of one packet
	maxResendAge = 1000 * int64(1e6) // ns since the packet reached us
)

// DownTrack forwards one published track to one subscriber. It implements
// webrtc.TrackLocal, so pion hands it the negotiated SSRC, payload type and
// writer, and it writes rewritten headers with the shared payload directly.
type DownTrack struct {
	recv  *Receiver
	peer  *Peer
	alloc *allocator // the subscriber's bandwidth allocator (nil in tests)
	log   *slog.Logger
	gate  gate // the allocator's pause hysteresis (its goroutine only)

	mu       sync.Mutex
	bound    bool
	closed   bool
	writer   webrtc.TrackLocalWriter
	ssrc     uint32
	pt       uint8
	sender   *webrtc.RTPSender
	current  int8 // layer being forwarded, noLayer before the first keyframe
	target   int8 // layer to switch to at its next keyframe
	maxLayer int8 // the subscriber's cap
	bwLayer  int8 // the bandwidth allocator's cap
	paused   bool
	frameEnd bool // the last packet sent ended a frame: padding may follow
	rw       rewrite.Stream
	vp8      vp8.Munger
	hdr      rtp.Header
	buf      [maxPacketSize]byte // a private copy when the payload must change
	rtxBuf   [maxPacketSize]byte
	direct   *directWriter // the direct send path's state, once used
	rtxPkt   rtp.Packet
	history  []sentPacket // by outgoing sequence number modulo its length
	out      sendState    // transport-wide numbering and sender reports (sendstate.go)

	// Relay layers only (relay_out.go).
	pinned   bool  // forwards exactly maxLayer, whatever else is live
	levelOut uint8 // the link's audio level extension id (0: none)

	packets   atomic.Uint64
	bytes     atomic.Uint64
	switches  atomic.Uint64
	nacks     atomic.Uint64
	resent    atomic.Uint64
	plis      atomic.Uint64
	writeErrs atomic.Uint64
	firstErr  atomic.Pointer[error] // the first write error, for the log

	lost atomic.Uint32 // cumulative loss the subscriber's receiver reports give

	background atomic.Bool // the subscriber's tab is hidden (shed.go)

	// What logChanges reported last (owned by the peer's run goroutine).
	loggedSwitches uint64
	loggedErr      bool

	onDecision func(Decision) // the layer decision changed
	done       chan struct{}
}

func newDownTrack(r *Receiver, p *Peer) *DownTrack {
	d := &DownTrack{
		recv:       r,
		peer:       p,
		alloc:      p.alloc,
		log:        p.log.With("track", string(r.id)),
		current:    noLayer,
		maxLayer:   maxLayers - 1,
		bwLayer:    maxLayers - 1,
		rw:         rewrite.New(r.codec.ClockRate),
		onDecision: p.params.OnDecision,
		done:       make(chan struct{}),
	}
	size := videoHistory
	if r.kind == webrtc.RTPCodecTypeAudio {
		size = audioHistory
	}
	d.history = make([]sentPacket, size)
	d.target = d.computeTargetLocked()
	return d
}

// ID is the published track's id: the same for every subscriber. (A
// string: it is pion's webrtc.TrackLocal method.)
func (d *DownTrack) ID() string { return string(d.recv.id) }

// RID is empty: a subscriber always receives one stream per track.
func (d *DownTrack) RID() string { return "" }

// StreamID groups a publisher's tracks for lip sync.
func (d *DownTrack) StreamID() string { return d.recv.streamID }

// Kind is audio or video.
func (d *DownTrack) Kind() webrtc.RTPCodecType { return d.recv.kind }

// Bind is called by pion when negotiation puts the track on the wire.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codec, ok := matchCodec(d.recv.codec, ctx.CodecParameters())
	if !ok {
		// The subscriber cannot decode this codec (an H.264-only browser
		// and a VP8 track). Failing would fail the whole answer and leave
		// the offer outstanding until the peer is dropped; instead the
		// section stays, silent. The client knows the track's codec and
		// says that it cannot show it.
		offered := ctx.CodecParameters()
		if len(offered) == 0 {
			return webrtc.RTPCodecParameters{}, errNoCodec
		}
		// It stays unbound: writeRTP sends nothing.
		d.log.Info("subscriber cannot decode the track's codec: nothing is sent", "codec", d.recv.codec.MimeType)
		return offered[0], nil
	}
	d.mu.Lock()
	d.writer = ctx.WriteStream()
	d.ssrc = uint32(ctx.SSRC())
	d.pt = uint8(codec.PayloadType)
	d.bound = true
	if d.pinned {
		d.levelOut = audioLevelID(ctx.HeaderExtensions())
	}
	d.out.twccID = transportCCID(ctx.HeaderExtensions())
	d.peer.indexSSRC(d.ssrc, d, nil)
	if d.peer.send != nil {
		d.peer.send.streamBound(d.out.twccID != 0)
	}
	target := d.target
	d.mu.Unlock()
	d.log.Debug("track bound", "ssrc", uint32(ctx.SSRC()), "codec", codec.MimeType, "pt", codec.PayloadType)
	if target >= 0 {
		d.recv.requestKeyframe(target)
	}
	return codec, nil
}

// Unbind is called by pion when the track leaves the wire.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.log.Debug("track unbound")
	d.mu.Lock()
	d.bound = false
	d.mu.Unlock()
	return nil
}

// writeRTP forwards a packet of the given layer and reports whether it was
// sent. It runs on the Receiver's reader goroutine (or a fan-out writer),
// once per packet and subscriber, and never allocates.
func (d *DownTrack) writeRTP(layer int8, p *rtp.Packet, key bool, vd *vp8.Descriptor, now int64) bool {
	d.mu.Lock()
	if !d.bound || d.closed || d.paused {
		d.mu.Unlock()
		return false
	}
	if d.target == noLayer {
		// Paused for bandwidth (or nothing to send): resuming restarts at
		// a keyframe and continues the numbering.
		d.current = noLayer
		d.mu.Unlock()
		return false
	}
	if layer != d.current {
		// A track that shows nothing yet starts on the first keyframe of
		// any layer up to the target (and moves up at the target's own
		// keyframe): a picture now beats waiting for the one layer whose
		// encoder may be slow to answer, or was just suspended. A pinned
		// track (a relay section) carries its one layer only.
		starting := d.current == noLayer && layer < d.target && !d.pinned
		if layer != d.target && !starting {
			d.mu.Unlock()
			return false
		}
		// Only a keyframe can start a decoder, and only once the transport
		// is up can the keyframe reach it; until then keep asking for one
		// (of the target: lower layers are only taken when they come).
		if !key || !d.peer.connected.Load() {
			d.mu.Unlock()
			if !starting {
				d.recv.requestKeyframe(layer)
			}
			return false
		}
		d.current = layer
		d.rw.StartSegment(p.SequenceNumber, p.Timestamp, now)
		if d.recv.ck == codec.VP8 {
			d.vp8.StartSegment(vd)
		}
		// Counted here, logged by logChanges: no log on the packet path.
		d.switches.Add(1)
		metricLayerSwitches.Inc()
		defer d.decided() // after the unlock below
	}
	seq, ts, ok := d.rw.Rewrite(p.SequenceNumber, p.Timestamp, now)
	if !ok {
		d.mu.Unlock()
		return false
	}
	payload := p.Payload
	if d.recv.ck == codec.VP8 {
		if d.vp8.NeedsRewrite() {
			n := copy(d.buf[:], payload)
			payload = d.buf[:n]
			d.vp8.Rewrite(payload, vd)
		}
		d.vp8.Sent(vd)
	}
	h := &d.history[int(seq)&(len(d.history)-1)]
	*h = sentPacket{dstSeq: seq, srcSeq: p.SequenceNumber, layer: layer, valid: true, ts: ts, vp8: d.vp8.Offsets()}
	d.fillHeader(&p.Header, seq, ts)
	if d.levelOut != 0 {
		d.copyAudioLevel(p)
	}
	d.stampLocked(len(payload), false)
	d.out.media(ts, now, len(payload))
	d.frameEnd = p.Marker
	n, err := d.writeOut(&d.hdr, payload)
	d.mu.Unlock()
	if err == nil && n > 0 {
		d.packets.Add(1)
		d.bytes.Add(uint64(n))
		return true
	}
	if err != nil && d.writeErrs.Add(1) == 1 {
		d.keepFirstErr(err)
	}
	return false
}

// keepFirstErr keeps err for logChanges. A function of its own so that only
// this copy escapes, not writeRTP's err on every packet.
func (d *DownTrack) keepFirstErr(err error) {
	e := err
	d.firstErr.Store(&e)
}

// logChanges logs layer switches and the first write error since it last
// ran. The peer calls it periodically, so the packet path never logs.
func (d *DownTrack) logChanges() {
	if n := d.switches.Load(); n != d.loggedSwitches {
		d.loggedSwitches = n
		d.mu.Lock()
		layer, ssrc, pt := d.current, d.ssrc, d.pt
		d.mu.Unlock()
		d.log.Debug("forwarding layer", "layer", layer, "switches", n, "ssrc", ssrc, "pt", pt)
	}
	if err := d.firstErr.Load(); err != nil && !d.loggedErr {
		d.loggedErr = true
		d.log.Debug("forward failed", "err", *err, "failures", d.writeErrs.Load())
	}
}

// writePadding sends padding-only packets worth about budget bytes, in the
// track's own sequence space, so the subscriber's bandwidth can be probed
// without sending media. It returns the bytes sent.
func (d *DownTrack) writePadding(budget int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Only between frames: a receiver assembles a frame from contiguous
	// sequence numbers, so padding inside one would make it undecodable.
	if !d.bound || d.closed || !d.frameEnd || !d.peer.connected.Load() {
		return 0
	}
	sent := 0
	for sent < budget {
		seq, ts, ok := d.rw.Insert()
		if !ok {
			break
		}
		d.history[int(seq)&(len(d.history)-1)] = sentPacket{dstSeq: seq, layer: paddingLayer, valid: true, ts: ts}
		h := &d.hdr
		h.Version, h.Marker, h.PayloadType = 2, false, d.pt
		h.SequenceNumber, h.Timestamp, h.SSRC = seq, ts, d.ssrc
		h.Padding, h.PaddingSize = true, paddingSize
		h.CSRC, h.Extension, h.Extensions = h.CSRC[:0], false, h.Extensions[:0]
		d.stampLocked(0, true)
		d.out.packets++
		n, err := d.writeOut(h, nil)
		if err != nil || n == 0 {
			break
		}
		sent += n
	}
	return sent
}

// canProbe reports whether padding can be sent on this track now.
func (d *DownTrack) canProbe() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bound && !d.closed && d.rw.Started() && d.recv.kind == webrtc.RTPCodecTypeVideo
}

// fillHeader sets the outgoing header from a source header. Extensions are
// dropped: their ids belong to the publisher's negotiation, not ours.
func (d *DownTrack) fillHeader(src *rtp.Header, seq uint16, ts uint32) {
	h := &d.hdr
	h.Version = 2
	h.Padding = src.Padding
	h.PaddingSize = src.PaddingSize
	h.Marker = src.Marker
	h.PayloadType = d.pt
	h.SequenceNumber = seq
	h.Timestamp = ts
	h.SSRC = d.ssrc
	h.CSRC = h.CSRC[:0]
	h.Extension = false
	h.Extensions = h.Extensions[:0]
}

// retransmit answers a NACK for one outgoing sequence number from the
// Receiver's cache, within the retransmission limits.
func (d *DownTrack) retransmit(seq uint16, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.bound || d.closed {
		return false
	}
	sp := &d.history[int(seq)&(len(d.history)-1)]
	if !sp.valid || sp.dstSeq != seq || sp.layer == paddingLayer {
		return false
	}
	tick := uint8(now.UnixMilli() / 10)
	if sp.resends >= maxResends || (sp.resends > 0 && tick-sp.resentAt < minResendGap) {
		return false
	}
	l := d.recv.layer(sp.layer)
	if l == nil {
		return false
	}
	n, at := l.cache.Get(sp.srcSeq, d.rtxBuf[:])
	if n == 0 || now.UnixNano()-at > maxResendAge {
		return false
	}
	if err := d.rtxPkt.Unmarshal(d.rtxBuf[:n]); err != nil {
		return false
	}
	payload := d.rtxPkt.Payload
	if d.recv.ck == codec.VP8 && !sp.vp8.IsZero() {
		// Rewritten as when it was first sent (rtxBuf is private).
		vd, err := vp8.Parse(payload)
		if err != nil {
			return false
		}
		sp.vp8.Apply(payload, &vd)
	}
	d.fillHeader(&d.rtxPkt.Header, seq, sp.ts)
	d.stampLocked(len(payload), false)
	d.out.packets++
	d.out.octets += uint32(len(payload))
	if _, err := d.writeOut(&d.hdr, payload); err != nil {
		return false
	}
	sp.resends++
	sp.resentAt = tick
	return true
}

// computeTargetLocked picks the layer to forward: the lowest of what the
// subscriber asked for, what its bandwidth allows, and what the publisher
// sends now.
func (d *DownTrack) computeTargetLocked() int8 {
	if d.pinned {
		return d.maxLayer
	}
	if d.recv.kind == webrtc.RTPCodecTypeAudio {
		return 0
	}
	if d.bwLayer == noLayer {
		return noLayer
	}
	want := d.maxLayer
	if d.bwLayer < want {
		want = d.bwLayer
	}
	return d.shedTarget(want) // the node's load shedding (shed.go)
}

// updateTarget re-evaluates the target after an input changed and asks for a
// keyframe of the new target when a switch is needed.
func (d *DownTrack) updateTarget() {
	d.mu.Lock()
	t := d.computeTargetLocked()
	changed := t != d.target
	d.target = t
	need := t >= 0 && t != d.current && d.bound && !d.paused
	d.mu.Unlock()
	if need {
		d.recv.requestKeyframe(t)
	}
	if changed {
		d.decided()
	}
}

// SetMaxLayer caps the layer the subscriber receives (0 low .. 2 high).
func (d *DownTrack) SetMaxLayer(l int) {
	if l < 0 {
		l = 0
	}
	if l >= maxLayers {
		l = maxLayers - 1
	}
	d.mu.Lock()
	d.maxLayer = int8(l)
	d.mu.Unlock()
	d.updateTarget()
}

// SetPaused stops or resumes forwarding. A resumed track restarts at a
// keyframe and continues the sequence numbers where they stopped.
func (d *DownTrack) SetPaused(p bool) {
	d.mu.Lock()
	changed := d.paused != p
	d.paused = p
	if p {
		d.current = noLayer
	}
	d.mu.Unlock()
	if changed {
		d.updateTarget()
		d.decided()
	}
}

// resync makes the track restart at the next keyframe (asking for one), as
// after a pause: the subscriber missed packets it cannot decode without.
func (d *DownTrack) resync() {
	d.mu.Lock()
	d.current = noLayer
	d.mu.Unlock()
	d.updateTarget()
}

// decided reports the current decision to the peer's OnDecision.
func (d *DownTrack) decided() {
	if d.onDecision != nil {
		d.onDecision(d.Decision())
	}
}

// Decision describes how a track is forwarded to its subscriber right now.
type Decision struct {
	TrackID   TrackID
	Current   int // -1 when nothing is forwarded
	Target    int
	Paused    bool
	Reason    string // requested, bandwidth, publisher or paused
	Bandwidth int64  // the subscriber's estimated bandwidth, bit/s (0 unknown)
}

// Decision reports the current forwarding decision.
func (d *DownTrack) Decision() Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	reason := "requested"
	switch {
	case d.paused:
		reason = "paused"
	case d.bwLayer < d.maxLayer && d.target <= d.bwLayer:
		reason = "bandwidth"
	case d.target < d.maxLayer:
		reason = "publisher"
	}
	var bw int64
	if d.alloc != nil {
		bw = d.alloc.lastEstimate()
	}
	return Decision{TrackID: d.recv.id, Current: int(d.current), Target: int(d.target), Paused: d.paused, Reason: reason, Bandwidth: bw}
}

// Stats are a DownTrack's counters.
type Stats struct {
	Packets, Bytes, Switches, NACKs, Resent, PLIs uint64
}

// Stats returns the DownTrack's counters.
func (d *DownTrack) Stats() Stats {
	return Stats{Packets: d.packets.Load(), Bytes: d.bytes.Load(), Switches: d.switches.Load(),
		NACKs: d.nacks.Load(), Resent: d.resent.Load(), PLIs: d.plis.Load()}
}

// close stops forwarding; pion's sender shutdown ends readRTCP.
func (d *DownTrack) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
}

// waitDone waits for the RTCP reader to end, at most timeout.
func (d *DownTrack) waitDone(timeout time.Duration) {
	select {
	case <-d.done:
	case <-time.After(timeout):
	}
}
