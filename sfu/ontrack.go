package sfu

import (
	"errors"
	"fmt"

	"github.com/pion/webrtc/v4"
)

// onTrack turns pion's per-layer remote tracks into Receivers: the first
// layer of a track creates its Receiver, and each layer gets a reader.
// Logs name the track's kind "media": a WHIP session's logger already uses
// "kind" for the session's.
func (p *Peer) onTrack(track *webrtc.TrackRemote, rtpRecv *webrtc.RTPReceiver) {
	r, isNew, err := p.receiverFor(track, rtpRecv)
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			p.log.Warn("incoming track ignored", "media", track.Kind().String(), "rid", track.RID(), "err", err)
		}
		return
	}
	r.addLayer(track)
	if !isNew {
		return
	}
	r.OnClose(func() {
		p.mu.Lock()
		delete(p.receivers, rtpRecv)
		p.mu.Unlock()
	})
	p.log.Info("track published", "track", string(r.id), "media", r.kind.String(), "codec", r.codec.MimeType, "source", r.source, "rid", track.RID())
	if p.params.OnTrack != nil {
		p.params.OnTrack(r)
	}
}

// receiverFor returns the Receiver of a pion receiver, creating it for the
// track's first layer when the peer may publish one more track.
func (p *Peer) receiverFor(track *webrtc.TrackRemote, rtpRecv *webrtc.RTPReceiver) (r *Receiver, isNew bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return nil, false, ErrClosed
	}
	if r, ok := p.receivers[rtpRecv]; ok {
		return r, false, nil
	}
	// Offers are checked, but an answer could still turn a section the
	// server sends on into sendrecv: media without the right is dropped.
	if p.params.CanPublish != nil && !p.params.CanPublish() {
		return nil, false, ErrPublishDenied
	}
	if p.params.MaxTracks > 0 && p.published >= p.params.MaxTracks {
		return nil, false, fmt.Errorf("%w: limit %d", ErrTooManyTracks, p.params.MaxTracks)
	}
	r = newReceiver(p, track, rtpRecv, p.sourceOf(track))
	p.receivers[rtpRecv] = r
	p.published++
	return r, true, nil
}

// sourceOf is what the publisher said the track is (camera, screen...),
// or by default its camera or microphone.
func (p *Peer) sourceOf(track *webrtc.TrackRemote) Source {
	if s := p.sources[track.ID()]; s != "" {
		return s
	}
	if track.Kind() == webrtc.RTPCodecTypeAudio {
		return SourceMicrophone
	}
	return SourceCamera
}
