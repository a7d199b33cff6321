package clip

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// VideoSource loops the VP8 clip as a camera would send it: one layer, or
// three simulcast layers on one transceiver. It answers keyframe requests
// by jumping to the next keyframe of the clip.
type VideoSource struct {
	tracks  []*webrtc.TrackLocalStaticRTP
	rids    []string
	frames  [][]videoFrame
	stamper atomic.Pointer[Stamper]
	keyReq  atomic.Bool
	sent    atomic.Uint64 // packets
	// paused has bit l set while layer l is not to be sent (dynacast).
	paused    atomic.Uint32
	layerSent [3]atomic.Uint64 // packets per layer
	payload   [3]atomic.Uint64 // payload bytes per track of Tracks
	bytes     atomic.Uint64    // RTP header and payload
	pace      time.Duration    // between frames; tests shorten it
	onSend    func(payload []byte)
}

// NewVideoSource makes a camera track with id and stream id; simulcast
// sends all three layers, otherwise only layer (0 low .. 2 high).
func NewVideoSource(id, streamID string, simulcast bool, layer int) (*VideoSource, error) {
	if !simulcast && (layer < 0 || layer >= len(layerFiles)) {
		return nil, fmt.Errorf("%w: %d", ErrNoLayer, layer)
	}
	c, err := loadClips()
	if err != nil {
		return nil, err
	}
	v := &VideoSource{pace: time.Second / 30}
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	for i, l := range layerFiles {
		if !simulcast && i != layer {
			continue
		}
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if simulcast {
			opts = append(opts, webrtc.WithRTPStreamID(l.rid))
		}
		t, err := webrtc.NewTrackLocalStaticRTP(codec, id, streamID, opts...)
		if err != nil {
			return nil, fmt.Errorf("video track: %w", err)
		}
		v.tracks = append(v.tracks, t)
		v.rids = append(v.rids, l.rid)
		v.frames = append(v.frames, c.video[i])
	}
	if !simulcast {
		v.rids[0] = ""
	}
	return v, nil
}

// Tracks are the TrackLocals to publish together (client.Peer.Publish).
func (v *VideoSource) Tracks() []webrtc.TrackLocal {
	out := make([]webrtc.TrackLocal, len(v.tracks))
	for i, t := range v.tracks {
		out[i] = t
	}
	return out
}

// Stamper puts the mid and rid header extensions on a simulcast packet
// (client.Stamper does).
type Stamper interface {
	Stamp(h *rtp.Header, rid string)
}

// SetStamper gives a simulcast source the mid/rid stamper of its sender.
func (v *VideoSource) SetStamper(s Stamper) { v.stamper.Store(&s) }

// OnSend makes the source call f with each RTP payload (VP8 payload
// descriptor first) just before it writes the packet, on the sending
// goroutine: the load tool times forwarding from there. f must not keep or
// change payload. Set it before Run.
func (v *VideoSource) OnSend(f func(payload []byte)) { v.onSend = f }

// RequestKeyframe makes the next frame sent a keyframe (PLI handling).
func (v *VideoSource) RequestKeyframe() { v.keyReq.Store(true) }

// SetActiveRIDs sends only the layers whose RIDs are given (the server's
// publish_layers); a layer that comes back starts on a keyframe. A source
// without simulcast always sends its one layer.
func (v *VideoSource) SetActiveRIDs(rids []string) {
	var paused uint32
	for l, rid := range v.rids {
		if rid != "" && !slices.Contains(rids, rid) {
			paused |= 1 << l
		}
	}
	if old := v.paused.Swap(paused); old&^paused != 0 {
		v.keyReq.Store(true)
	}
}

// LayerPacketsSent counts the RTP packets written of the layer with rid
// ("" for a source without simulcast).
func (v *VideoSource) LayerPacketsSent(rid string) uint64 {
	if i := slices.Index(v.rids, rid); i >= 0 {
		return v.layerSent[i].Load()
	}
	return 0
}

// PacketsSent counts RTP packets written.
func (v *VideoSource) PacketsSent() uint64 { return v.sent.Load() }

// BytesSent counts the RTP bytes written (headers and payloads).
func (v *VideoSource) BytesSent() uint64 { return v.bytes.Load() }

// PayloadBytes counts the payload bytes written on the i-th track of
// Tracks (a simulcast layer, lowest first): what a subscriber of that layer
// should receive, whatever headers the hops between rewrite.
func (v *VideoSource) PayloadBytes(i int) uint64 {
	if i < 0 || i >= len(v.tracks) {
		return 0
	}
	return v.payload[i].Load()
}

// Run sends 30 frames per second until ctx ends. Like a camera's, its
// clock does not slow down: frames a busy machine's lost ticks missed are
// sent at the next one, so the video's media time keeps up with real time.
func (v *VideoSource) Run(ctx context.Context) {
	packetizers := make([]rtp.Packetizer, len(v.tracks))
	for i := range v.tracks {
		packetizers[i] = rtp.NewPacketizer(1200, 96, 0, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	}
	tick := time.NewTicker(v.pace)
	defer tick.Stop()
	start := time.Now()
	for i, sent := 0, 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for due := int(time.Since(start) / v.pace); sent < due; sent++ {
			i = v.sendFrame(packetizers, i) + 1
		}
	}
}

// sendFrame sends the clip's frame i (or, when a keyframe was asked for,
// the next keyframe's) on every layer and returns the index it sent.
func (v *VideoSource) sendFrame(packetizers []rtp.Packetizer, i int) int {
	n := len(v.frames[0])
	idx := i % n
	if v.keyReq.Swap(false) && !v.frames[0][idx].key {
		// Jump forward to the clip's next keyframe.
		for !v.frames[0][idx].key {
			i++
			idx = i % n
		}
	}
	st := v.stamper.Load()
	paused := v.paused.Load()
	for l, t := range v.tracks {
		if paused&(1<<l) != 0 {
			// Time goes on for a paused layer: it resumes at the
			// timestamp of now, as an encoder's would.
			packetizers[l].SkipSamples(3000)
			continue
		}
		f := v.frames[l][idx%len(v.frames[l])]
		for _, p := range packetizers[l].Packetize(f.data, 3000) {
			if st != nil && v.rids[l] != "" {
				(*st).Stamp(&p.Header, v.rids[l])
			}
			if v.onSend != nil {
				v.onSend(p.Payload)
			}
			if err := t.WriteRTP(p); err == nil {
				v.sent.Add(1)
				v.layerSent[l].Add(1)
				v.bytes.Add(uint64(p.MarshalSize()))
				v.payload[l].Add(uint64(len(p.Payload)))
			}
		}
	}
	return i
}
