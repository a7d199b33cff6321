package sfu

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// RelayOut sends chosen simulcast layers of local Receivers to one other
// node. Each relayed layer is a media section of its own, forwarded by a
// DownTrack pinned to that layer: sequence numbers and timestamps stay
// continuous, payloads are not touched, NACKs are answered from the
// Receiver's cache and keyframe requests go to the publisher for that
// layer. The bandwidth allocator never pauses a relay layer: the other
// node asked for it on behalf of its own subscribers.
//
// The RelayOut is always the offerer of its link: changes are batched into
// one offer at a time, and the next waits for the answer.
type RelayOut struct {
	*relayBase

	mu            sync.Mutex
	tracks        map[*Receiver]*[maxLayers]*DownTrack // the layers relayed, by track
	watched       map[*Receiver]bool                   // tracks whose end stops their relay
	needNeg       bool
	offerInFlight bool
	negTimer      *time.Timer
	offerTimer    *time.Timer
	wg            sync.WaitGroup // an offer being prepared
	retired       RelayStats     // counters of layers no longer relayed
}

// NewRelayOut creates the sending end of a relay link to p.Node; p.OnOffer
// is required. Nothing is offered until the first Send.
func (e *Engine) NewRelayOut(p RelayParams) (*RelayOut, error) {
	if p.OnOffer == nil {
		return nil, errors.New("relay out: OnOffer is required")
	}
	b, err := newRelayBase(e, p, "out")
	if err != nil {
		return nil, err
	}
	ro := &RelayOut{relayBase: b, tracks: map[*Receiver]*[maxLayers]*DownTrack{}, watched: map[*Receiver]bool{}}
	b.closeFn = ro.Close
	b.onConnected = ro.askKeyframes
	ro.register(ro)
	return ro, nil
}

// Send relays exactly the given layers of r (0 low .. 2 high; audio has
// only 0): layers not yet relayed start, relayed layers not listed stop.
// An empty list stops relaying r. The change reaches the other node with
// the next offer.
func (ro *RelayOut) Send(r *Receiver, layers []int) error {
	if r == nil {
		return errors.New("relay: no track to send")
	}
	if len(layers) == 0 {
		ro.Stop(r)
		return nil
	}
	var want [maxLayers]bool
	for _, l := range layers {
		if l < 0 || l >= maxLayers {
			return fmt.Errorf("relay track %s: layer %d is outside 0..%d", r.id, l, maxLayers-1)
		}
		if r.kind == webrtc.RTPCodecTypeAudio && l != 0 {
			return fmt.Errorf("relay track %s: audio has no layer %d", r.id, l)
		}
		want[l] = true
	}
	if r.closed.Load() {
		return fmt.Errorf("relay track %s: %w", r.id, ErrTrackEnded)
	}
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if ro.isClosed() {
		return ErrClosed
	}
	if err := ro.watchLocked(r); err != nil {
		return err
	}
	cur := ro.tracks[r]
	if cur == nil {
		cur = &[maxLayers]*DownTrack{}
		ro.tracks[r] = cur
	}
	changed := false
	defer func() {
		if *cur == ([maxLayers]*DownTrack{}) {
			delete(ro.tracks, r)
		}
		if changed {
			ro.needNeg = true
			ro.scheduleLocked()
		}
	}()
	for l := range cur {
		switch {
		case want[l] && cur[l] == nil:
			d, err := ro.addLayerLocked(r, int8(l))
			if err != nil {
				return fmt.Errorf("relay track %s layer %d: %w", r.id, l, err)
			}
			cur[l] = d
			changed = true
		case !want[l] && cur[l] != nil:
			ro.removeLayerLocked(cur[l])
			cur[l] = nil
			changed = true
		}
	}
	return nil
}

// watchLocked makes the end of r stop its relay (once per track).
func (ro *RelayOut) watchLocked(r *Receiver) error {
	if ro.watched[r] {
		return nil
	}
	ro.watched[r] = true
	r.OnClose(func() {
		ro.Stop(r)
		ro.mu.Lock()
		delete(ro.watched, r)
		ro.mu.Unlock()
	})
	// Registered before the track closed, the callback will run; after,
	// it may not: refuse, and leave the callback harmless.
	if r.closed.Load() {
		return fmt.Errorf("relay track %s: %w", r.id, ErrTrackEnded)
	}
	return nil
}

// Stop ends the relay of r; the other node's Receiver for it ends with the
// next offer.
func (ro *RelayOut) Stop(r *Receiver) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	cur := ro.tracks[r]
	if cur == nil {
		return
	}
	for l, d := range cur {
		if d != nil {
			ro.removeLayerLocked(d)
			cur[l] = nil
		}
	}
	delete(ro.tracks, r)
	ro.needNeg = true
	ro.scheduleLocked()
}

// askKeyframes asks the publishers for a keyframe of every relayed layer:
// those sent before the link connected never arrived.
func (ro *RelayOut) askKeyframes() {
	ro.mu.Lock()
	var downs []*DownTrack
	for _, cur := range ro.tracks {
		for _, d := range cur {
			if d != nil {
				downs = append(downs, d)
			}
		}
	}
	ro.mu.Unlock()
	for _, d := range downs {
		d.updateTarget()
	}
}

// Sending returns the layers of r being relayed, lowest first.
func (ro *RelayOut) Sending(r *Receiver) []int {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	var out []int
	if cur := ro.tracks[r]; cur != nil {
		for l, d := range cur {
			if d != nil {
				out = append(out, l)
			}
		}
	}
	return out
}

// addLayerLocked puts a DownTrack pinned to one layer of r on a media
// section of the link and starts reading its feedback.
func (ro *RelayOut) addLayerLocked(r *Receiver, layer int8) (*DownTrack, error) {
	d := newDownTrack(r, ro.link)
	d.log = d.log.With("layer", int(layer))
	d.mu.Lock()
	d.pinned, d.maxLayer, d.target = true, layer, layer
	d.mu.Unlock()
	// AddTrack reuses the section of a layer removed earlier, so the SDP
	// does not grow with every change of layers.
	s, err := ro.pc.AddTrack(d)
	if err != nil {
		return nil, fmt.Errorf("add track: %w", err)
	}
	d.sender = s
	r.addDownTrack(d)
	go d.readRTCP(s)
	return d, nil
}

// removeLayerLocked stops one relayed layer; its counters are kept.
func (ro *RelayOut) removeLayerLocked(d *DownTrack) {
	d.close()
	d.recv.removeDownTrack(d)
	if err := ro.pc.RemoveTrack(d.sender); err != nil {
		_ = d.sender.Stop()
		d.log.Debug("remove relay track", "err", err)
	}
	ro.retired.addCounters(downTrackRelayStats(d))
}

// scheduleLocked arranges an offer soon if one is needed and none is out.
func (ro *RelayOut) scheduleLocked() {
	if ro.isClosed() || !ro.needNeg || ro.offerInFlight || ro.negTimer != nil {
		return
	}
	ro.negTimer = time.AfterFunc(ro.engine.negotiationDelay, ro.negotiate)
}

// negotiate makes an offer, waits until it holds every candidate and hands
// it to OnOffer.
func (ro *RelayOut) negotiate() {
	offer, gathered, ok := ro.makeOffer()
	if !ok {
		return
	}
	select {
	case <-gathered:
	case <-ro.link.closed:
		ro.wg.Done()
		return
	case <-time.After(relayGatherTimeout):
		ro.wg.Done()
		ro.fail(errors.New("relay offer: ice gathering did not complete"))
		return
	}
	offer.SDP = ro.pc.LocalDescription().SDP
	ro.wg.Done()
	// Outside any lock and untracked by Close: the callback may block, or
	// close the relay itself.
	if !ro.isClosed() {
		ro.log.Debug("relay offer", "sections", len(offer.Sections))
		ro.params.OnOffer(offer)
	}
}

// makeOffer sets a new local offer when one is needed and returns its
// metadata and the channel that closes once gathering is complete.
func (ro *RelayOut) makeOffer() (RelayOffer, <-chan struct{}, bool) {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	ro.negTimer = nil
	if ro.isClosed() || ro.offerInFlight || !ro.needNeg {
		return RelayOffer{}, nil, false
	}
	ro.needNeg = false
	offer, err := ro.pc.CreateOffer(nil)
	if err != nil {
		ro.fail(fmt.Errorf("create relay offer: %w", err))
		return RelayOffer{}, nil, false
	}
	gathered := webrtc.GatheringCompletePromise(ro.pc)
	if err := ro.pc.SetLocalDescription(offer); err != nil {
		ro.fail(fmt.Errorf("set relay offer: %w", err))
		return RelayOffer{}, nil, false
	}
	ro.offerInFlight = true
	ro.offerTimer = time.AfterFunc(ro.engine.offerWindow, ro.offerTimedOut)
	ro.wg.Add(1)
	return RelayOffer{Sections: ro.sectionsLocked()}, gathered, true
}

// sectionsLocked describes the layer each sending media section carries.
func (ro *RelayOut) sectionsLocked() map[string]RelaySection {
	out := map[string]RelaySection{}
	for _, t := range ro.pc.GetTransceivers() {
		s := t.Sender()
		if s == nil || t.Mid() == "" {
			continue
		}
		d, ok := s.Track().(*DownTrack)
		if !ok {
			continue
		}
		r := d.recv
		out[t.Mid()] = RelaySection{Track: r.id, Publisher: r.publisher, Stream: r.streamID, MSID: r.msid,
			Kind: r.kind.String(), Source: r.source, Codec: relayCodecOf(r.codec), Simulcast: r.simulcast,
			Layer: int(d.maxLayer)}
	}
	return out
}

// offerTimedOut fails a link whose offer was never answered: pion cannot
// roll a local offer back, so nothing could be negotiated on it again.
func (ro *RelayOut) offerTimedOut() {
	ro.mu.Lock()
	ro.offerTimer = nil
	stuck := !ro.isClosed() && ro.offerInFlight
	ro.mu.Unlock()
	if stuck {
		ro.fail(fmt.Errorf("relay offer not answered within %v", ro.engine.offerWindow))
	}
}

// HandleAnswer applies the other node's answer to the outstanding offer.
// A bad answer leaves the offer outstanding until its deadline.
func (ro *RelayOut) HandleAnswer(answer string) error {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	if ro.isClosed() {
		return ErrClosed
	}
	if !ro.offerInFlight {
		return ErrNoOffer
	}
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(answer); err != nil {
		return fmt.Errorf("parse relay answer: %w: %w", ErrInvalidSDP, err)
	}
	if err := ro.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("apply relay answer: %w: %w", ErrInvalidSDP, err)
	}
	ro.offerInFlight = false
	if ro.offerTimer != nil {
		ro.offerTimer.Stop()
		ro.offerTimer = nil
	}
	ro.armConnectTimer()
	ro.scheduleLocked()
	return nil
}

// Close ends the link: the relayed layers stop, the PeerConnection closes
// (the other node sees its tracks end), and Close returns once the link's
// goroutines are gone.
func (ro *RelayOut) Close() error {
	var err error
	ro.closeOnce.Do(func() {
		ro.closing.Store(true)
		downs := ro.stop()
		ro.stopConnectTimer()
		if cerr := ro.pc.Close(); cerr != nil {
			err = fmt.Errorf("close relay peer connection: %w", cerr)
		}
		for _, d := range downs {
			d.waitDone(closeWait)
		}
		ro.wg.Wait()
		ro.mu.Lock()
		for _, d := range downs {
			ro.retired.addCounters(downTrackRelayStats(d))
		}
		ro.mu.Unlock()
		ro.retire(ro)
		ro.log.Info("relay closed")
	})
	return err
}

// stop marks the link closed, stops its timers and its layers, and returns
// the layers whose feedback readers Close must wait for.
func (ro *RelayOut) stop() []*DownTrack {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	close(ro.link.closed)
	for _, t := range []*time.Timer{ro.negTimer, ro.offerTimer} {
		if t != nil {
			t.Stop()
		}
	}
	var downs []*DownTrack
	for r, cur := range ro.tracks {
		for _, d := range cur {
			if d != nil {
				d.close()
				r.removeDownTrack(d)
				downs = append(downs, d)
			}
		}
	}
	ro.tracks = map[*Receiver]*[maxLayers]*DownTrack{}
	return downs
}

// Stats returns the link's counters: live layers and stopped ones.
func (ro *RelayOut) Stats() RelayStats {
	ro.mu.Lock()
	defer ro.mu.Unlock()
	st := ro.retired
	st.Tracks = len(ro.tracks)
	for _, cur := range ro.tracks {
		for _, d := range cur {
			if d != nil {
				st.Layers++
				st.addCounters(downTrackRelayStats(d))
			}
		}
	}
	return st
}

// LayerStats returns the counters of every layer being relayed, by track
// and then layer.
func (ro *RelayOut) LayerStats() []RelayLayerStats {
	ro.mu.Lock()
	var out []RelayLayerStats
	for r, cur := range ro.tracks {
		for l, d := range cur {
			if d == nil {
				continue
			}
			d.mu.Lock()
			ssrc := d.ssrc
			d.mu.Unlock()
			out = append(out, RelayLayerStats{Track: r.id, Layer: l, SSRC: ssrc, RelayStats: downTrackRelayStats(d)})
		}
	}
	ro.mu.Unlock()
	slices.SortFunc(out, func(a, b RelayLayerStats) int {
		if a.Track != b.Track {
			if a.Track < b.Track {
				return -1
			}
			return 1
		}
		return a.Layer - b.Layer
	})
	return out
}
