package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// offerTimeout bounds the wait for the server's answer to an own offer.
const offerTimeout = 15 * time.Second

// enqueue schedules work on the signaling goroutine without blocking.
func (p *Peer) enqueue(f func()) {
	p.mu.Lock()
	p.queue = append(p.queue, f)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// loop is the only goroutine that touches negotiation state, so server
// messages, own offers and candidates are handled strictly in order.
func (p *Peer) loop() {
	defer p.wg.Done()
	msgs := p.sig.Messages()
	for {
		p.mu.Lock()
		work := p.queue
		p.queue = nil
		p.mu.Unlock()
		for _, f := range work {
			f()
		}
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		case m, ok := <-msgs:
			if !ok {
				return
			}
			p.handle(m)
		}
	}
}

func (p *Peer) handle(m *signal.Message) {
	switch m.Type {
	case signal.TypeOffer:
		p.handleOffer(m)
		return
	case signal.TypeCandidate:
		p.remoteCandidate(m.Candidate)
		return
	case signal.TypeEndOfCandidates:
		return
	case signal.TypeTrackPublished, signal.TypeTrackUpdated:
		p.mu.Lock()
		p.tracks[m.Track.ID] = *m.Track
		p.mu.Unlock()
	case signal.TypeTrackUnpublished:
		p.mu.Lock()
		delete(p.tracks, m.Track.ID)
		p.mu.Unlock()
	}
	p.pushEvent(m)
}

// handleOffer applies a server offer. An own offer refused for glare was
// never applied locally (see offer), so there is nothing to roll back: the
// client is the polite peer and offers again afterwards.
func (p *Peer) handleOffer(m *signal.Message) {
	p.mu.Lock()
	for mid, id := range m.Mids {
		p.mids[mid] = id
	}
	p.mu.Unlock()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
		p.log.Warn("apply server offer", "err", err)
		return
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.log.Warn("create answer", "err", err)
		return
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		p.log.Warn("set answer", "err", err)
		return
	}
	if err := p.sig.Send(&signal.Message{Type: signal.TypeAnswer, SDP: p.pc.LocalDescription().SDP}); err != nil {
		return
	}
	p.sdpOnWire()
	p.applyHeldRemote()
	if p.needOffer {
		p.offer()
	}
}

// remoteCandidate adds a server candidate, or holds it until there is a
// remote description to add it to.
func (p *Peer) remoteCandidate(sc *signal.Candidate) {
	if sc == nil {
		return
	}
	c := webrtc.ICECandidateInit{Candidate: sc.Candidate, SDPMid: sc.SDPMid,
		SDPMLineIndex: sc.SDPMLineIndex, UsernameFragment: sc.UsernameFragment}
	if p.pc.RemoteDescription() == nil {
		p.heldRemote = append(p.heldRemote, c)
		return
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		p.log.Debug("add candidate", "err", err)
	}
}

func (p *Peer) applyHeldRemote() {
	for _, c := range p.heldRemote {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("add held candidate", "err", err)
		}
	}
	p.heldRemote = nil
}

// localCandidate sends a gathered candidate (nil: gathering is complete),
// or holds it until the first SDP was sent: the server cannot use a
// candidate before it has the description it belongs to.
func (p *Peer) localCandidate(c *webrtc.ICECandidateInit) {
	if !p.sdpSent {
		p.heldLocal = append(p.heldLocal, c)
		return
	}
	p.sendCandidate(c)
}

func (p *Peer) sendCandidate(c *webrtc.ICECandidateInit) {
	if c == nil {
		_ = p.sig.Send(&signal.Message{Type: signal.TypeEndOfCandidates})
		return
	}
	_ = p.sig.Send(&signal.Message{Type: signal.TypeCandidate, Candidate: &signal.Candidate{
		Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}})
}

// sdpOnWire releases candidates held until the first SDP was sent.
func (p *Peer) sdpOnWire() {
	if p.sdpSent {
		return
	}
	p.sdpSent = true
	for _, c := range p.heldLocal {
		p.sendCandidate(c)
	}
	p.heldLocal = nil
}

// offer sends an own offer when stable and applies the answer. pion cannot
// roll back a local offer, so the offer is set as the local description
// only once the server has accepted it: a glare error then leaves nothing
// to undo, and needOffer makes the offer again after the server's offer.
func (p *Peer) offer() {
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.needOffer = true
		return
	}
	p.needOffer = false
	// pion gives a new transceiver its mid in CreateOffer, from the same
	// counter as the server's: an offer the server refuses or loses in
	// glare would leave a mid that a later server offer reuses for another
	// section. Own sections get their own namespace.
	for _, t := range p.pc.GetTransceivers() {
		if t.Mid() == "" && t.Sender() != nil && t.Sender().Track() != nil {
			_ = t.SetMid(fmt.Sprintf("c%d", p.ownMids))
			p.ownMids++
		}
	}
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.finishOffer(fmt.Errorf("create offer: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, offerTimeout)
	defer cancel()
	resp, err := p.sig.Request(ctx, &signal.Message{Type: signal.TypeOffer, SDP: offer.SDP, Tracks: p.ownTracks()})
	var serr *signal.Error
	if errors.As(err, &serr) && serr.Code == signal.CodeGlare {
		p.needOffer = true
		return
	}
	if err != nil {
		p.finishOffer(fmt.Errorf("offer: %w", err))
		return
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		p.finishOffer(fmt.Errorf("set offer: %w", err))
		return
	}
	p.sdpOnWire()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: resp.SDP}); err != nil {
		p.finishOffer(fmt.Errorf("apply answer: %w", err))
		return
	}
	p.applyHeldRemote()
	p.finishOffer(nil)
}

// ownTracks says which source each published track is.
func (p *Peer) ownTracks() []signal.Track {
	p.mu.Lock()
	defer p.mu.Unlock()
	var tracks []signal.Track
	for id, src := range p.sources {
		tracks = append(tracks, signal.Track{ID: id, Source: src})
	}
	return tracks
}

// finishOffer ends an own offer/answer exchange, with its outcome for
// the callers of waitOffer.
func (p *Peer) finishOffer(err error) {
	if err != nil {
		p.log.Debug("own offer failed", "err", err)
	}
	p.mu.Lock()
	p.offerGen++
	p.lastOfferErr = err
	close(p.genChanged)
	p.genChanged = make(chan struct{})
	p.mu.Unlock()
}

// waitOffer waits until an own offer made after generation gen finished.
func (p *Peer) waitOffer(ctx context.Context, gen int) error {
	for {
		p.mu.Lock()
		if p.offerGen > gen {
			err := p.lastOfferErr
			p.mu.Unlock()
			return err
		}
		ch := p.genChanged
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the server's answer: %w", ctx.Err())
		case <-p.ctx.Done():
			return ErrClosed
		}
	}
}
