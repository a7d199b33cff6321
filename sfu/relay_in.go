package sfu

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/confab-sfu/confab/sfu/codec"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// RelayIn receives what one other node relays and turns it into ordinary
// Receivers: the layers of one origin track, each arriving on its own media
// section, become the layers of one Receiver that keeps the origin's track
// id, publisher, source and codec. Local subscribers use it like any
// other: their own layer choice, keyframe requests (which reach the
// publisher's node as PLIs on that layer's section), and loss repair from
// this node's cache, while this node NACKs what the link loses.
//
// A Receiver lives while the offers list its track, whatever layers come
// and go meanwhile; it ends when an offer no longer lists it or the link
// closes.
type RelayIn struct {
	*relayBase

	offerMu  sync.Mutex // one offer at a time, gathering included
	mu       sync.Mutex
	sections map[string]RelaySection // by mid, from the latest offer
	recvs    map[TrackID]*Receiver   // by origin track id
	arrived  map[string]relayArrival // by mid: layers being read
	answered bool
	retired  RelayStats // counters of layers no longer relayed
}

// relayArrival is one layer that arrived on a media section.
type relayArrival struct {
	rtp   *webrtc.RTPReceiver
	layer *recvLayer
	sec   RelaySection
}

// NewRelayIn creates the receiving end of a relay link from p.Node;
// p.OnTrack is required.
func (e *Engine) NewRelayIn(p RelayParams) (*RelayIn, error) {
	if p.OnTrack == nil {
		return nil, errors.New("relay in: OnTrack is required")
	}
	b, err := newRelayBase(e, p, "in")
	if err != nil {
		return nil, err
	}
	ri := &RelayIn{relayBase: b, sections: map[string]RelaySection{}, recvs: map[TrackID]*Receiver{},
		arrived: map[string]relayArrival{}}
	b.closeFn = ri.Close
	b.pc.OnTrack(ri.onTrack)
	ri.register(ri)
	return ri, nil
}

// HandleOffer applies an offer of the other node and returns the complete
// answer (every candidate in it). Tracks the offer lists for the first
// time are announced through OnTrack before it returns; tracks it no
// longer lists end. A bad offer changes nothing.
func (ri *RelayIn) HandleOffer(ctx context.Context, offer RelayOffer) (string, error) {
	ri.offerMu.Lock()
	defer ri.offerMu.Unlock()
	gathered, added, err := ri.applyOffer(offer)
	if err != nil {
		return "", err
	}
	for _, r := range added {
		ri.params.OnTrack(r)
	}
	select {
	case <-gathered:
	case <-ri.link.closed:
		return "", ErrClosed
	case <-ctx.Done():
		return "", fmt.Errorf("gather relay candidates: %w", ctx.Err())
	}
	return ri.pc.LocalDescription().SDP, nil
}

// applyOffer checks and applies an offer, sets the answer and brings the
// tracks in line with the offer's metadata. It returns the tracks new to
// this offer.
func (ri *RelayIn) applyOffer(offer RelayOffer) (<-chan struct{}, []*Receiver, error) {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if ri.isClosed() {
		return nil, nil, ErrClosed
	}
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(offer.SDP); err != nil {
		return nil, nil, fmt.Errorf("parse relay offer: %w: %w", ErrInvalidSDP, err)
	}
	if err := validateRelayOffer(offer, parsed); err != nil {
		return nil, nil, err
	}
	if err := ri.checkLiveTracksLocked(offer); err != nil {
		return nil, nil, err
	}
	if err := ri.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer.SDP}); err != nil {
		if ri.pc.SignalingState() != webrtc.SignalingStateStable {
			ri.fail(fmt.Errorf("relay offer failed half-way: %w", err))
		}
		return nil, nil, fmt.Errorf("apply relay offer: %w: %w", ErrInvalidSDP, err)
	}
	answer, err := ri.pc.CreateAnswer(nil)
	if err != nil {
		ri.fail(fmt.Errorf("create relay answer: %w", err))
		return nil, nil, fmt.Errorf("create relay answer: %w: %w", ErrInvalidSDP, err)
	}
	gathered := webrtc.GatheringCompletePromise(ri.pc)
	if err := ri.pc.SetLocalDescription(answer); err != nil {
		ri.fail(fmt.Errorf("set relay answer: %w", err))
		return nil, nil, fmt.Errorf("set relay answer: %w: %w", ErrInvalidSDP, err)
	}
	if !ri.answered {
		ri.answered = true
		ri.armConnectTimer()
	}
	ri.log.Debug("relay offer applied", "sections", len(offer.Sections))
	return gathered, ri.followOfferLocked(offer.Sections), nil
}

// checkLiveTracksLocked refuses an offer that changes the kind or codec of
// a track already being received: its subscribers were set up for them.
func (ri *RelayIn) checkLiveTracksLocked(offer RelayOffer) error {
	for _, sec := range offer.Sections {
		r := ri.recvs[sec.Track]
		if r == nil {
			continue
		}
		if r.kind.String() != sec.Kind || r.codec.MimeType != sec.Codec.MimeType || r.codec.ClockRate != sec.Codec.ClockRate {
			return fmt.Errorf("%w: track %q changes from %s %s to %s %s", ErrInvalidRelayOffer,
				sec.Track, r.kind, r.codec.MimeType, sec.Kind, sec.Codec.MimeType)
		}
	}
	return nil
}

// followOfferLocked stops layers whose section changed or left, ends the
// tracks the offer no longer lists, and creates the tracks it lists for
// the first time, which it returns.
func (ri *RelayIn) followOfferLocked(sections map[string]RelaySection) []*Receiver {
	for mid, a := range ri.arrived {
		if sec, ok := sections[mid]; !ok || sec != a.sec {
			// pion has stopped the section's receiver if its SSRC went;
			// stopping it again makes sure the layer's reader ends.
			_ = a.rtp.Stop()
			ri.retired.addCounters(layerRelayStats(a.layer))
			delete(ri.arrived, mid)
		}
	}
	listed := map[TrackID]bool{}
	var added []*Receiver
	for mid, sec := range sections {
		listed[sec.Track] = true
		if ri.recvs[sec.Track] != nil {
			continue
		}
		r := ri.newReceiver(sec, ri.audioLevelIDOf(mid))
		ri.recvs[sec.Track] = r
		added = append(added, r)
		ri.log.Info("relayed track arrives", "track", r.id, "publisher", r.publisher,
			"media", r.kind.String(), "codec", r.codec.MimeType, "source", r.source)
	}
	for id, r := range ri.recvs {
		if !listed[id] {
			delete(ri.recvs, id)
			ri.log.Info("relayed track ends", "track", id)
			r.close()
		}
	}
	ri.sections = sections
	return added
}

// newReceiver creates the Receiver of a relayed track, before any of its
// layers arrives. Its keyframe requests go out on the link.
func (ri *RelayIn) newReceiver(sec RelaySection, levelExtID uint8) *Receiver {
	kind := webrtc.NewRTPCodecType(sec.Kind)
	stream := sec.Stream
	if stream == "" {
		stream = string(sec.Publisher)
	}
	r := &Receiver{
		id:         sec.Track,
		publisher:  sec.Publisher,
		streamID:   stream,
		msid:       sec.MSID,
		source:     sec.Source,
		kind:       kind,
		codec:      sec.Codec.parameters(),
		ck:         codec.KindOf(sec.Codec.MimeType),
		peer:       ri.link,
		simulcast:  sec.Simulcast,
		keyEvery:   ri.engine.cfg.KeyframeInterval,
		relayed:    true,
		levelExtID: levelExtID,
		done:       make(chan struct{}),
	}
	r.audioLevel.Store(-1)
	// Listed on this node's engine under the origin's id: local Peers
	// subscribe to it like to any track.
	ri.engine.addTrack(r)
	r.wg.Add(1)
	go r.monitor()
	return r
}

// audioLevelIDOf returns the audio level extension id negotiated for a
// section (one id for the whole bundle), 0 when none.
func (ri *RelayIn) audioLevelIDOf(mid string) uint8 {
	for _, t := range ri.pc.GetTransceivers() {
		if t.Mid() == mid && t.Receiver() != nil {
			return audioLevelID(t.Receiver().GetParameters().HeaderExtensions)
		}
	}
	return 0
}

// onTrack starts reading a layer that arrived, as the layer its section's
// metadata names, of its track's Receiver.
func (ri *RelayIn) onTrack(track *webrtc.TrackRemote, rr *webrtc.RTPReceiver) {
	ri.mu.Lock()
	mid := ""
	for _, t := range ri.pc.GetTransceivers() {
		if t.Receiver() == rr {
			mid = t.Mid()
		}
	}
	sec, ok := ri.sections[mid]
	r := ri.recvs[sec.Track]
	ri.mu.Unlock()
	if !ok || r == nil {
		ri.log.Debug("relayed media without a track ignored", "mid", mid)
		_ = rr.Stop()
		return
	}
	// Outside ri.mu: a new layer re-targets subscribers, whose callbacks
	// belong to the caller.
	l := r.addLayerAt(int8(sec.Layer), track)
	if l == nil {
		ri.log.Warn("relayed layer not read: the layer is being read already or its track ended",
			"track", sec.Track, "layer", sec.Layer, "mid", mid)
		_ = rr.Stop()
		return
	}
	ri.mu.Lock()
	if ri.sections[mid] == sec && !ri.isClosed() {
		ri.arrived[mid] = relayArrival{rtp: rr, layer: l, sec: sec}
	} else {
		_ = rr.Stop() // an offer moved on meanwhile
	}
	ri.mu.Unlock()
	ri.log.Debug("relayed layer arrives", "track", sec.Track, "layer", sec.Layer, "ssrc", uint32(track.SSRC()))
}

// Receivers returns the tracks being received, in no particular order.
func (ri *RelayIn) Receivers() []*Receiver {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	out := make([]*Receiver, 0, len(ri.recvs))
	for _, r := range ri.recvs {
		out = append(out, r)
	}
	return out
}

// Receiver returns the Receiver of an origin track id, if it is relayed.
func (ri *RelayIn) Receiver(trackID TrackID) *Receiver {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return ri.recvs[trackID]
}

// Close ends the link and every track it brought; it returns once their
// readers have stopped and subscribers were told (OnClose).
func (ri *RelayIn) Close() error {
	var err error
	ri.closeOnce.Do(func() {
		ri.closing.Store(true)
		ri.mu.Lock()
		close(ri.link.closed)
		recvs := make([]*Receiver, 0, len(ri.recvs))
		for _, r := range ri.recvs {
			recvs = append(recvs, r)
		}
		ri.recvs = map[TrackID]*Receiver{}
		ri.mu.Unlock()
		ri.stopConnectTimer()
		if cerr := ri.pc.Close(); cerr != nil {
			err = fmt.Errorf("close relay peer connection: %w", cerr)
		}
		for _, r := range recvs {
			r.close()
		}
		for _, r := range recvs {
			select {
			case <-r.Done():
			case <-time.After(closeWait):
				ri.log.Warn("relayed track did not end in time", "track", r.id)
			}
		}
		ri.mu.Lock()
		for mid, a := range ri.arrived {
			ri.retired.addCounters(layerRelayStats(a.layer))
			delete(ri.arrived, mid)
		}
		ri.mu.Unlock()
		ri.retire(ri)
		ri.log.Info("relay closed")
	})
	return err
}

// Stats returns the link's counters: live layers and ended ones.
func (ri *RelayIn) Stats() RelayStats {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	st := ri.retired
	st.Tracks = len(ri.recvs)
	for _, a := range ri.arrived {
		st.addCounters(layerRelayStats(a.layer))
		if r := ri.recvs[a.sec.Track]; r != nil && r.layer(int8(a.sec.Layer)) == a.layer {
			st.Layers++
		}
	}
	return st
}
