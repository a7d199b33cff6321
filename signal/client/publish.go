package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/confab-sfu/confab/signal"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Publish sends tracks as one transceiver (several tracks with RIDs, lowest
// first, make a simulcast track) and returns once an offer that includes it
// has been answered. source is one of signal's sources (signal.SourceCamera
// ...). A refusal by the server is returned as its *signal.Error, wrapped,
// and the track is removed again.
func (p *Peer) Publish(ctx context.Context, source string, tracks ...webrtc.TrackLocal) (*webrtc.RTPSender, error) {
	if len(tracks) == 0 {
		return nil, ErrNoTrack
	}
	type result struct {
		sender *webrtc.RTPSender
		gen    int
		err    error
	}
	res := make(chan result, 1)
	p.enqueue(func() {
		t, err := p.pc.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			res <- result{err: fmt.Errorf("add transceiver: %w", err)}
			return
		}
		for _, extra := range tracks[1:] {
			if err := t.Sender().AddEncoding(extra); err != nil {
				res <- result{err: fmt.Errorf("add simulcast encoding %s: %w", extra.RID(), err)}
				return
			}
		}
		p.mu.Lock()
		p.sources[tracks[0].ID()] = source
		gen := p.offerGen
		p.mu.Unlock()
		id := tracks[0].ID()
		readKeyframeRequests(&p.wg, t.Sender(), func() {
			if p.params.OnKeyframeRequest != nil {
				p.params.OnKeyframeRequest(id)
			}
		})
		res <- result{sender: t.Sender(), gen: gen}
		p.offer()
	})
	var r result
	select {
	case r = <-res:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, ErrClosed
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := p.waitOffer(ctx, r.gen); err != nil {
		// Refused: stop sending on it, so that nothing is left half-added.
		p.enqueue(func() {
			if err := p.pc.RemoveTrack(r.sender); err != nil {
				p.log.Debug("remove refused track", "err", err)
			}
		})
		return nil, fmt.Errorf("publish %s: %w", source, err)
	}
	return r.sender, nil
}

// Unpublish stops sending a track and renegotiates.
func (p *Peer) Unpublish(ctx context.Context, s *webrtc.RTPSender) error {
	gen := make(chan int, 1)
	errc := make(chan error, 1)
	p.enqueue(func() {
		if err := p.pc.RemoveTrack(s); err != nil {
			errc <- err
			return
		}
		p.mu.Lock()
		gen <- p.offerGen
		p.mu.Unlock()
		p.offer()
	})
	select {
	case err := <-errc:
		return fmt.Errorf("remove track: %w", err)
	case g := <-gen:
		return p.waitOffer(ctx, g)
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		return ErrClosed
	}
}

// Subscribe sets how the server forwards others' tracks to the peer: a
// layer or resolution cap, or a pause, per track. The server reports what
// it does in "layers" events (see Events).
func (p *Peer) Subscribe(ctx context.Context, subs ...signal.Subscription) error {
	if p.ctx.Err() != nil {
		return ErrClosed
	}
	if _, err := p.sig.Request(ctx, &signal.Message{Type: signal.TypeSubscribe, Subscriptions: subs}); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	return nil
}

// readKeyframeRequests reads the RTCP of every encoding (simulcast layer)
// of s until the sender stops, which keeps its interceptors fed, and calls
// onRequest for each PLI or FIR. The readers count in wg.
func readKeyframeRequests(wg *sync.WaitGroup, s *webrtc.RTPSender, onRequest func()) {
	encodings := s.GetParameters().Encodings
	simulcast := len(encodings) > 1
	for _, e := range encodings {
		wg.Add(1)
		go func(rid string) {
			defer wg.Done()
			for {
				var pkts []rtcp.Packet
				var err error
				if simulcast {
					pkts, _, err = s.ReadSimulcastRTCP(rid)
				} else {
					pkts, _, err = s.ReadRTCP()
				}
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						onRequest()
					}
				}
			}
		}(e.RID)
	}
}

func (p *Peer) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	p.mu.Lock()
	info, ok := p.tracks[t.ID()]
	if !ok {
		for _, tr := range p.pc.GetTransceivers() {
			if tr.Receiver() == r {
				if id, found := p.mids[tr.Mid()]; found {
					info, ok = p.tracks[id]
				}
			}
		}
	}
	p.mu.Unlock()
	if !ok {
		info = signal.Track{ID: t.ID(), Kind: t.Kind().String(), StreamID: t.StreamID(), Participant: t.StreamID()}
	}
	readReceiverRTCP(&p.wg, r)
	if p.params.OnTrack != nil {
		p.params.OnTrack(&RemoteTrack{Info: info, Track: t, Receiver: r})
	}
}

// readReceiverRTCP reads a receiver's RTCP until it stops: its
// interceptors need a reader. The reader counts in wg.
func readReceiverRTCP(wg *sync.WaitGroup, r *webrtc.RTPReceiver) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
}
