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

// serve is the only goroutine that touches negotiation state while s is
// the session, so server messages, own offers and candidates are handled
// strictly in order. It returns when the peer is leaving ("", nil), or
// when s ended: with the cause to rejoin for, or a final error (see lost).
func (p *Peer) serve(s *session) (string, error) {
	msgs := s.sig.Messages()
	failed := s.failed
	if p.params.Reconnect == nil {
		failed = nil // without Reconnect, a failed connection waits for Leave
	}
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
			return "", nil
		case <-p.wake:
		case <-failed:
			return CauseMediaFailed, nil
		case m, ok := <-msgs:
			if !ok {
				return p.lost(s)
			}
			p.handle(s, m)
		}
	}
}

func (p *Peer) handle(s *session, m *signal.Message) {
	switch m.Type {
	case signal.TypeOffer:
		p.handleOffer(s, m)
		return
	case signal.TypeCandidate:
		p.remoteCandidate(s, m.Candidate)
		return
	case signal.TypeEndOfCandidates:
		return
	case signal.TypeBye:
		s.bye = m
	case signal.TypeTrackPublished, signal.TypeTrackUpdated:
		p.mu.Lock()
		p.tracks[m.Track.ID] = *m.Track
		p.mu.Unlock()
	case signal.TypeTrackUnpublished:
		p.mu.Lock()
		delete(p.tracks, m.Track.ID)
		p.mu.Unlock()
	case signal.TypePublishLayers:
		if m.Track != nil && p.params.OnPublishLayers != nil {
			p.params.OnPublishLayers(m.Track.ID, m.Track.RIDs)
		}
	}
	p.pushEvent(m)
}

// handleOffer applies a server offer. An own offer refused for glare was
// never applied locally (see offer), so there is nothing to roll back: the
// client is the polite peer and offers again afterwards.
func (p *Peer) handleOffer(s *session, m *signal.Message) {
	p.mu.Lock()
	for mid, id := range m.Mids {
		p.mids[mid] = id
	}
	p.mu.Unlock()
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
		s.log.Warn("apply server offer", "err", err)
		return
	}
	answer, err := s.pc.CreateAnswer(nil)
	if err != nil {
		s.log.Warn("create answer", "err", err)
		return
	}
	if err := s.pc.SetLocalDescription(answer); err != nil {
		s.log.Warn("set answer", "err", err)
		return
	}
	if err := s.sig.Send(&signal.Message{Type: signal.TypeAnswer, SDP: s.pc.LocalDescription().SDP}); err != nil {
		return
	}
	p.sdpOnWire(s)
	applyHeldRemote(s)
	if s.needOffer {
		p.offer(s)
	}
}

// remoteCandidate adds a server candidate, or holds it until there is a
// remote description to add it to.
func (p *Peer) remoteCandidate(s *session, sc *signal.Candidate) {
	if sc == nil {
		return
	}
	c := webrtc.ICECandidateInit{Candidate: sc.Candidate, SDPMid: sc.SDPMid,
		SDPMLineIndex: sc.SDPMLineIndex, UsernameFragment: sc.UsernameFragment}
	if s.pc.RemoteDescription() == nil {
		s.heldRemote = append(s.heldRemote, c)
		return
	}
	if err := s.pc.AddICECandidate(c); err != nil {
		s.log.Debug("add candidate", "err", err)
	}
}

func applyHeldRemote(s *session) {
	for _, c := range s.heldRemote {
		if err := s.pc.AddICECandidate(c); err != nil {
			s.log.Debug("add held candidate", "err", err)
		}
	}
	s.heldRemote = nil
}

// localCandidate sends a gathered candidate (nil: gathering is complete),
// or holds it until the first SDP was sent: the server cannot use a
// candidate before it has the description it belongs to. Candidates of a
// session that is gone are dropped.
func (p *Peer) localCandidate(s *session, c *webrtc.ICECandidateInit) {
	if !p.current(s) {
		return
	}
	if !s.sdpSent {
		s.heldLocal = append(s.heldLocal, c)
		return
	}
	sendCandidate(s, c)
}

func sendCandidate(s *session, c *webrtc.ICECandidateInit) {
	if c == nil {
		_ = s.sig.Send(&signal.Message{Type: signal.TypeEndOfCandidates})
		return
	}
	_ = s.sig.Send(&signal.Message{Type: signal.TypeCandidate, Candidate: &signal.Candidate{
		Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment}})
}

// sdpOnWire releases candidates held until the first SDP was sent.
func (p *Peer) sdpOnWire(s *session) {
	if s.sdpSent {
		return
	}
	s.sdpSent = true
	for _, c := range s.heldLocal {
		sendCandidate(s, c)
	}
	s.heldLocal = nil
}

// offer sends an own offer when stable and applies the answer. pion cannot
// roll back a local offer, so the offer is set as the local description
// only once the server has accepted it: a glare error then leaves nothing
// to undo, and needOffer makes the offer again after the server's offer.
// With Reconnect, an offer cut short by the lost connection stays pending:
// the next session's offer settles it (see republish).
func (p *Peer) offer(s *session) {
	if s.pc.SignalingState() != webrtc.SignalingStateStable {
		s.needOffer = true
		return
	}
	s.needOffer = false
	// pion gives a new transceiver its mid in CreateOffer, from the same
	// counter as the server's: an offer the server refuses or loses in
	// glare would leave a mid that a later server offer reuses for another
	// section. Own sections get their own namespace.
	for _, t := range s.pc.GetTransceivers() {
		if t.Mid() == "" && t.Sender() != nil && t.Sender().Track() != nil {
			_ = t.SetMid(fmt.Sprintf("c%d", s.ownMids))
			s.ownMids++
		}
	}
	offer, err := s.pc.CreateOffer(nil)
	if err != nil {
		p.finishOffer(fmt.Errorf("create offer: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, offerTimeout)
	defer cancel()
	resp, err := s.sig.Request(ctx, &signal.Message{Type: signal.TypeOffer, SDP: offer.SDP, Tracks: p.ownTracks()})
	var serr *signal.Error
	if errors.As(err, &serr) && serr.Code == signal.CodeGlare {
		s.needOffer = true
		return
	}
	if err != nil && p.params.Reconnect != nil && errors.Is(err, signal.ErrClosed) && p.ctx.Err() == nil {
		return
	}
	if err != nil {
		p.finishOffer(fmt.Errorf("offer: %w", err))
		return
	}
	if err := s.pc.SetLocalDescription(offer); err != nil {
		p.finishOffer(fmt.Errorf("set offer: %w", err))
		return
	}
	p.sdpOnWire(s)
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: resp.SDP}); err != nil {
		p.finishOffer(fmt.Errorf("apply answer: %w", err))
		return
	}
	applyHeldRemote(s)
	p.restamp(s)
	p.finishOffer(nil)
}

// ownTracks says which source each published track is.
func (p *Peer) ownTracks() []signal.Track {
	p.mu.Lock()
	defer p.mu.Unlock()
	tracks := make([]signal.Track, 0, len(p.pubs))
	for _, pub := range p.pubs {
		tracks = append(tracks, signal.Track{ID: pub.tracks[0].ID(), Source: pub.source})
	}
	return tracks
}

// finishOffer ends an own offer/answer exchange, with its outcome for
// the callers of waitOffer.
func (p *Peer) finishOffer(err error) {
	if err != nil {
		p.params.Logger.Debug("own offer failed", "err", err)
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
