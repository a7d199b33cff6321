package sfu

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/vp8"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// source publishes synthetic VP8 from a client: one stream, or three
// simulcast layers (rids l, m, h) stamped with the mid and rid header
// extensions, as browsers do and pion does not. Every packet is a whole
// frame, every keyEvery-th frame of a layer a keyframe, and the byte after
// the VP8 header names the layer, so a subscriber can tell what it gets.
type source struct {
	tracks    []*webrtc.TrackLocalStaticRTP
	rids      []string
	midID     uint8
	ridID     uint8
	mid       []byte
	paused    [maxLayers]atomic.Bool
	sent      [maxLayers]atomic.Int64
	stop      chan struct{}
	done      chan struct{}
	simulcast bool
}

const (
	sourcePace = 20 * time.Millisecond
	keyEvery   = 10 // frames: a keyframe every 200 ms
	vp8HdrLen  = 16 // what vp8Packet builds: 6-byte descriptor, 10-byte frame header
)

// layerPayload is the payload size per layer: about 80, 240 and 480 kbit/s
// at 50 packets a second.
var layerPayload = [maxLayers]int{200, 600, 1200}

func newSource(t testing.TB, id string, simulcast bool) *source {
	t.Helper()
	s := &source{simulcast: simulcast, stop: make(chan struct{}), done: make(chan struct{})}
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	rids := []string{""}
	if simulcast {
		rids = []string{"l", "m", "h"}
	}
	for _, rid := range rids {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if rid != "" {
			opts = append(opts, webrtc.WithRTPStreamID(rid))
		}
		tr, err := webrtc.NewTrackLocalStaticRTP(vp8, id, "stream-"+id, opts...)
		if err != nil {
			t.Fatal(err)
		}
		s.tracks = append(s.tracks, tr)
		s.rids = append(s.rids, rid)
	}
	return s
}

// locals are the tracks to publish (the first carries the transceiver).
func (s *source) locals() []webrtc.TrackLocal {
	out := make([]webrtc.TrackLocal, len(s.tracks))
	for i, tr := range s.tracks {
		out[i] = tr
	}
	return out
}

// publish publishes the source from c and starts sending.
func (s *source) publish(t testing.TB, c *client, src Source) {
	t.Helper()
	s.negotiate(t, c, src)
	s.start(t)
}

// negotiate offers the source from c without sending anything yet.
func (s *source) negotiate(t testing.TB, c *client, src Source) {
	t.Helper()
	sender := c.publish(src, s.locals()...)
	if s.simulcast {
		c.do(func() {
			for _, e := range sender.GetParameters().HeaderExtensions {
				switch e.URI {
				case sdp.SDESMidURI:
					s.midID = uint8(e.ID)
				case sdp.SDESRTPStreamIDURI:
					s.ridID = uint8(e.ID)
				}
			}
			for _, tr := range c.pc.GetTransceivers() {
				if tr.Sender() == sender {
					s.mid = []byte(tr.Mid())
				}
			}
		})
		if s.midID == 0 || s.ridID == 0 || len(s.mid) == 0 {
			t.Fatal("simulcast header extensions not negotiated")
		}
	}
}

// start starts sending what negotiate offered.
func (s *source) start(t testing.TB) {
	go s.run()
	t.Cleanup(func() {
		close(s.stop)
		<-s.done
	})
}

// pause stops (or resumes) sending one layer.
func (s *source) pause(layer int, p bool) { s.paused[layer].Store(p) }

func (s *source) run() {
	defer close(s.done)
	tick := time.NewTicker(sourcePace)
	defer tick.Stop()
	var seq [maxLayers]uint16
	var frame [maxLayers]int
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		for l, tr := range s.tracks {
			layer := l
			if !s.simulcast {
				layer = 0
			}
			if s.paused[layer].Load() {
				continue
			}
			p := s.packet(layer, seq[l], frame[l])
			if tr.WriteRTP(p) == nil {
				s.sent[layer].Add(1)
			}
			seq[l]++
			frame[l]++
		}
	}
}

// packet builds frame n of a layer.
func (s *source) packet(layer int, seq uint16, n int) *rtp.Packet {
	key := n%keyEvery == 0
	payload := vp8.Packet{PictureID: uint16(n & 0x7fff), TL0PICIDX: uint8(n / keyEvery), Start: true, Keyframe: key, Width: 320 << layer, Height: 180 << layer}.Append(nil)
	payload = append(payload, byte(layer))
	payload = append(payload, bytes.Repeat([]byte{0xaa}, layerPayload[layer]-len(payload))...)
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq,
		Timestamp: uint32(n) * 1800, Marker: true}, Payload: payload}
	if s.simulcast {
		_ = p.SetExtension(s.midID, s.mid)
		_ = p.SetExtension(s.ridID, []byte(s.rids[layer]))
	}
	return p
}

// add records one packet a subscriber received.
func (w *mediaWatch) add(raw []byte) {
	var p rtp.Packet
	if p.Unmarshal(raw) != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(p.Payload) == 0 {
		w.padding++
		return
	}
	w.packets++
	if len(p.Payload) > vp8HdrLen {
		l := int(p.Payload[vp8HdrLen])
		if l < len(w.layers) {
			w.layers[l]++
			w.last = l
		}
	}
	if w.bySeq == nil {
		return
	}
	if _, seen := w.bySeq[p.SequenceNumber]; seen {
		w.resent++
	}
	w.bySeq[p.SequenceNumber] = bytes.Clone(p.Payload)
}
