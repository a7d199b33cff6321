package sfu

import (
	"context"
	"fmt"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// AnswerWhole negotiates once, the WHIP / WHEP way: the client's offer is
// answered with one SDP that already holds every server candidate, since
// there is no channel for trickle or for later offers. Each receiver in
// send is attached to a media section the client offered to receive
// (matched by kind, in order); receivers beyond those sections are left
// out. The peer then never makes an offer of its own.
func (p *Peer) AnswerWhole(ctx context.Context, offer string, send []*Receiver) (string, error) {
	p.mu.Lock()
	if p.isClosed() {
		p.mu.Unlock()
		return "", ErrClosed
	}
	if p.pc.SignalingState() != webrtc.SignalingStateStable || p.pc.RemoteDescription() != nil {
		p.mu.Unlock()
		return "", fmt.Errorf("%w: already negotiated", ErrInvalidSDP)
	}
	p.whole = true
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(offer); err != nil {
		p.mu.Unlock()
		return "", fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	if err := p.checkPublishLocked(parsed); err != nil {
		p.mu.Unlock()
		return "", err
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.mu.Unlock()
		p.fail(fmt.Errorf("apply offer: %w", err))
		return "", fmt.Errorf("%w: apply offer: %v", ErrInvalidSDP, err)
	}
	// Sections the client offered to receive, by kind.
	free := map[webrtc.RTPCodecType]int{}
	for _, t := range p.pc.GetTransceivers() {
		d := t.Direction()
		if (d == webrtc.RTPTransceiverDirectionSendonly || d == webrtc.RTPTransceiverDirectionSendrecv) &&
			(t.Sender() == nil || t.Sender().Track() == nil) {
			free[t.Kind()]++
		}
	}
	for _, r := range send {
		if free[r.kind] == 0 {
			continue
		}
		d := newDownTrack(r, p)
		d.onDecision = p.params.OnDecision
		// AddTrack takes the offered section of the same kind.
		s, err := p.pc.AddTrack(d)
		if err != nil {
			continue
		}
		free[r.kind]--
		d.sender = s
		p.downs[d] = s
		r.addDownTrack(d)
		go d.readRTCP(s)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.mu.Unlock()
		p.fail(fmt.Errorf("create answer: %w", err))
		return "", fmt.Errorf("%w: create answer: %v", ErrInvalidSDP, err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(answer); err != nil {
		p.mu.Unlock()
		p.fail(fmt.Errorf("set answer: %w", err))
		return "", fmt.Errorf("%w: set answer: %v", ErrInvalidSDP, err)
	}
	p.armConnectTimerLocked()
	p.mu.Unlock()
	// Outside the lock: gathering takes a moment and needs nothing of ours.
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("gathering candidates: %w", ctx.Err())
	}
	return p.pc.LocalDescription().SDP, nil
}

// StopPublishing ends every track the peer publishes (a participant moved
// to the audience): their subscribers see them end, and anything the
// client still sends on those sections is discarded. Later offers that
// send are refused unless CanPublish allows them again.
func (p *Peer) StopPublishing() {
	p.mu.Lock()
	rtps := make([]*webrtc.RTPReceiver, 0, len(p.receivers))
	for rr := range p.receivers {
		rtps = append(rtps, rr)
	}
	p.mu.Unlock()
	for _, rr := range rtps {
		if err := rr.Stop(); err != nil {
			p.log.Debug("stop receiver", "participant", p.id, "err", err)
		}
	}
}
