package sfu

import (
	"errors"
	"fmt"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// HandleOffer applies a client offer and hands the answer to reply. sources
// maps the client's track ids (msid) to their source. With a server offer
// outstanding it returns ErrGlare and changes nothing: the client is polite
// and will take the server's offer.
func (p *Peer) HandleOffer(offer string, sources map[string]Source, reply func(answer string)) error {
	p.awaitICEStart()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	if p.offerInFlight || p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.log.Debug("client offer refused: server offer outstanding")
		return ErrGlare
	}
	p.log.Debug("client offer")
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(offer); err != nil {
		return fmt.Errorf("parse offer: %w: %w", ErrInvalidSDP, err)
	}
	if err := p.checkPublishLocked(parsed); err != nil {
		return err
	}
	for id, src := range sources {
		p.sources[id] = src
	}
	if err := p.answerLocked(offer); err != nil {
		p.rollbackRemoteLocked()
		return err
	}
	reply(p.pc.LocalDescription().SDP)
	p.sdpOnWireLocked()
	p.armConnectTimerLocked()
	p.applyHeldRemoteLocked()
	p.scheduleLocked()
	return nil
}

// iceStartWait bounds how long a client offer waits for ICE to start.
const iceStartWait = 2 * time.Second

// awaitICEStart holds a client offer back until ICE has started after the
// first offer/answer exchange. pion starts ICE on its own goroutine once
// that exchange completes, and takes a remote offer applied before ICE has
// the remote credentials for an ICE restart: its answer then carries new
// local credentials that nobody asked for. Firefox, whose web client offers
// right after answering the server's first offer, refuses them and its
// media never connects.
func (p *Peer) awaitICEStart() {
	if p.pc.CurrentRemoteDescription() == nil {
		return // no exchange completed yet: nothing is starting
	}
	t := time.NewTimer(iceStartWait)
	defer t.Stop()
	select {
	case <-p.iceStarted:
	case <-p.closed:
	case <-t.C:
		p.log.Debug("client offer applied before ICE started", "waited", iceStartWait)
	}
}

// onICEState notes that ICE started (it has the remote credentials).
func (p *Peer) onICEState(s webrtc.ICEConnectionState) {
	if s != webrtc.ICEConnectionStateNew {
		p.iceStartOnce.Do(func() { close(p.iceStarted) })
	}
}

// answerLocked applies a remote offer and sets the local answer.
func (p *Peer) answerLocked(offer string) error {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fmt.Errorf("apply offer: %w: %w", ErrInvalidSDP, err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create answer: %w: %w", ErrInvalidSDP, err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("set answer: %w: %w", ErrInvalidSDP, err)
	}
	return nil
}

// rollbackRemoteLocked handles an offer that failed half-way. pion cannot
// roll back a remote offer, so a peer left outside the stable state can
// never negotiate again: it is reported failed.
func (p *Peer) rollbackRemoteLocked() {
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.log.Warn("offer failed half-way; closing the peer")
		p.fail(errors.New("negotiation failed half-way"))
	}
}

// checkPublishLocked enforces the publish permission and the track limit
// against the media sections the client wants to send.
func (p *Peer) checkPublishLocked(s *sdp.SessionDescription) error {
	sending := 0
	for _, m := range s.MediaDescriptions {
		if m.MediaName.Media != "audio" && m.MediaName.Media != "video" {
			continue
		}
		if m.MediaName.Port.Value == 0 {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "sendonly" || a.Key == "sendrecv" {
				sending++
			}
		}
	}
	if sending > 0 && p.params.CanPublish != nil && !p.params.CanPublish() {
		return ErrPublishDenied
	}
	if p.params.MaxTracks > 0 && sending > p.params.MaxTracks {
		return fmt.Errorf("%w: %d sending sections, limit %d", ErrTooManyTracks, sending, p.params.MaxTracks)
	}
	return nil
}

// HandleAnswer applies the client's answer to the outstanding server offer.
func (p *Peer) HandleAnswer(answer string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	if !p.offerInFlight {
		return ErrNoOffer
	}
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(answer); err != nil {
		return fmt.Errorf("parse answer: %w: %w", ErrInvalidSDP, err)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		// The offer stays outstanding: the client may still send a good
		// answer before the offer times out.
		return fmt.Errorf("apply answer: %w: %w", ErrInvalidSDP, err)
	}
	p.offerInFlight = false
	p.armConnectTimerLocked()
	p.log.Debug("client answered")
	if p.offerTimer != nil {
		p.offerTimer.Stop()
		p.offerTimer = nil
	}
	p.applyHeldRemoteLocked()
	p.scheduleLocked()
	return nil
}

// Renegotiate asks for a new server offer (batched with other changes).
func (p *Peer) Renegotiate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scheduleLocked()
}

// scheduleLocked arranges a negotiation soon if one is needed. Called after
// every change and after every completed exchange.
func (p *Peer) scheduleLocked() {
	if p.isClosed() || p.whole {
		return
	}
	if !p.needNeg || p.offerInFlight || p.negTimer != nil {
		return
	}
	p.negTimer = time.AfterFunc(p.engine.negotiationDelay, p.negotiate)
}

// currentMidsLocked maps the media sections that carry forwarded tracks to
// the tracks' ids.
func (p *Peer) currentMidsLocked() map[string]TrackID {
	mids := map[string]TrackID{}
	for _, t := range p.pc.GetTransceivers() {
		s := t.Sender()
		if s == nil || t.Mid() == "" {
			continue
		}
		if d, ok := s.Track().(*DownTrack); ok {
			mids[t.Mid()] = d.recv.id
		}
	}
	return mids
}

// negotiate sends a server offer when one is needed and none is outstanding.
func (p *Peer) negotiate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.negTimer = nil
	if p.isClosed() || p.offerInFlight || !p.needNeg {
		return
	}
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		// A client offer is being handled; HandleOffer reschedules.
		return
	}
	p.needNeg = false
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.log.Warn("create offer", "err", err)
		return
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		p.log.Warn("set local offer", "err", err)
		return
	}
	p.offerInFlight = true
	local := p.pc.LocalDescription().SDP
	p.log.Debug("server offer", "tracks", len(p.downs))
	p.offerTimer = time.AfterFunc(p.engine.offerWindow, p.offerTimedOut)
	if p.params.OnOffer != nil {
		p.params.OnOffer(local, p.currentMidsLocked())
	}
	p.sdpOnWireLocked()
}

// offerTimedOut gives up on a client that never answered an offer. pion
// cannot roll a local offer back, so no later change could be negotiated
// with it: the peer is reported failed and its participant removed.
func (p *Peer) offerTimedOut() {
	p.mu.Lock()
	p.offerTimer = nil
	stuck := !p.isClosed() && p.offerInFlight
	p.mu.Unlock()
	if stuck {
		p.log.Warn("offer not answered in time", "window", p.engine.offerWindow)
		p.fail(errOfferTimedOut)
	}
}
