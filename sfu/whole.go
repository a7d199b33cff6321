package sfu

import (
	"context"
	"fmt"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// AnswerWhole negotiates once, the WHIP / WHEP way: the client's offer is
// answered with one SDP that already holds every server candidate, since
// there is no channel for trickle or for later offers. Each track in send
// is attached to a media section the client offered to receive (matched by
// kind, in order); tracks beyond those sections, or no longer live, are
// left out. The peer then never makes an offer of its own.
func (p *Peer) AnswerWhole(ctx context.Context, offer string, send []TrackID) (string, error) {
	recvs := make([]*Receiver, 0, len(send))
	for _, id := range send {
		if r := p.engine.track(id); r != nil {
			recvs = append(recvs, r)
		}
	}
	gathered, err := p.answerWhole(offer, recvs)
	if err != nil {
		return "", err
	}
	// Outside the lock: gathering takes a moment and needs nothing of ours.
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("gather candidates: %w", ctx.Err())
	}
	return p.pc.LocalDescription().SDP, nil
}

// answerWhole applies the offer, attaches send and sets the answer; the
// returned channel closes once every candidate is in it.
func (p *Peer) answerWhole(offer string, send []*Receiver) (<-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return nil, ErrClosed
	}
	if p.pc.SignalingState() != webrtc.SignalingStateStable || p.pc.RemoteDescription() != nil {
		return nil, fmt.Errorf("answer offer: %w: already negotiated", ErrInvalidSDP)
	}
	p.whole = true
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(offer); err != nil {
		return nil, fmt.Errorf("parse offer: %w: %w", ErrInvalidSDP, err)
	}
	if err := p.checkPublishLocked(parsed); err != nil {
		return nil, err
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.fail(fmt.Errorf("apply offer: %w", err))
		return nil, fmt.Errorf("apply offer: %w: %w", ErrInvalidSDP, err)
	}
	p.attachOfferedLocked(send)
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.fail(fmt.Errorf("create answer: %w", err))
		return nil, fmt.Errorf("create answer: %w: %w", ErrInvalidSDP, err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(answer); err != nil {
		p.fail(fmt.Errorf("set answer: %w", err))
		return nil, fmt.Errorf("set answer: %w: %w", ErrInvalidSDP, err)
	}
	p.armConnectTimerLocked()
	return gathered, nil
}

// attachOfferedLocked forwards each receiver of send on a media section of
// its kind that the client offered to receive, in order, while any is free.
func (p *Peer) attachOfferedLocked(send []*Receiver) {
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
		// AddTrack takes the offered section of the same kind.
		if _, err := p.addDownLocked(r); err != nil {
			p.log.Debug("track left out of the answer", "track", string(r.id), "err", err)
			continue
		}
		free[r.kind]--
	}
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
			p.log.Debug("stop receiver", "err", err)
		}
	}
}
