package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/confab-sfu/confab/signal"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// publication is what Publish was asked to send: it is sent again in
// every session after a rejoin.
type publication struct {
	source   string
	tracks   []webrtc.TrackLocal
	first    *webrtc.RTPSender // what Publish returned
	sender   *webrtc.RTPSender // in the latest session
	stampers []*Stamper        // kept up to date across sessions
}

// Publish sends tracks as one transceiver (several tracks with RIDs, lowest
// first, make a simulcast track) and returns once an offer that includes it
// has been answered. source is one of signal's sources (signal.SourceCamera
// ...). A refusal by the server is returned as its *signal.Error, wrapped,
// and the track is removed again. With Reconnect the tracks are published
// again in every new session; the sender returned stays valid for
// Unpublish and NewStamper.
func (p *Peer) Publish(ctx context.Context, source string, tracks ...webrtc.TrackLocal) (*webrtc.RTPSender, error) {
	if len(tracks) == 0 {
		return nil, ErrNoTrack
	}
	type result struct {
		pub *publication
		gen int
		err error
	}
	res := make(chan result, 1)
	p.enqueue(func() {
		s := p.session()
		pub := &publication{source: source, tracks: tracks}
		if err := p.addSender(s, pub); err != nil {
			res <- result{err: err}
			return
		}
		p.mu.Lock()
		pub.first = pub.sender
		p.pubs = append(p.pubs, pub)
		gen := p.offerGen
		p.mu.Unlock()
		res <- result{pub: pub, gen: gen}
		p.offer(s)
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
		p.enqueue(func() { p.withdraw(p.session(), r.pub) })
		return nil, fmt.Errorf("publish %s: %w", source, err)
	}
	return r.pub.first, nil
}

// addSender adds pub's tracks to the session's PeerConnection as one
// send-only transceiver and reads its keyframe requests.
func (p *Peer) addSender(s *session, pub *publication) error {
	t, err := s.pc.AddTransceiverFromTrack(pub.tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fmt.Errorf("add transceiver: %w", err)
	}
	for _, extra := range pub.tracks[1:] {
		if err := t.Sender().AddEncoding(extra); err != nil {
			_ = s.pc.RemoveTrack(t.Sender())
			return fmt.Errorf("add simulcast encoding %s: %w", extra.RID(), err)
		}
	}
	id := pub.tracks[0].ID()
	readKeyframeRequests(&p.wg, t.Sender(), func() {
		if p.params.OnKeyframeRequest != nil {
			p.params.OnKeyframeRequest(id)
		}
	})
	p.mu.Lock()
	pub.sender = t.Sender()
	p.mu.Unlock()
	return nil
}

// withdraw forgets a publication and stops sending it in session s.
func (p *Peer) withdraw(s *session, pub *publication) {
	p.mu.Lock()
	for i, x := range p.pubs {
		if x == pub {
			p.pubs = append(p.pubs[:i], p.pubs[i+1:]...)
			break
		}
	}
	sender := pub.sender
	p.mu.Unlock()
	if err := s.pc.RemoveTrack(sender); err != nil {
		s.log.Debug("remove track", "source", pub.source, "err", err)
	}
}

// publicationOf finds the publication a sender of any session belongs to.
func (p *Peer) publicationOf(sender *webrtc.RTPSender) *publication {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pub := range p.pubs {
		if pub.first == sender || pub.sender == sender {
			return pub
		}
	}
	return nil
}

// republish sends every publication again in the new session s, in one
// offer. What cannot be sent again is dropped and reported on Events.
func (p *Peer) republish(s *session) {
	p.mu.Lock()
	pubs := append([]*publication(nil), p.pubs...)
	gen := p.offerGen
	p.mu.Unlock()
	if len(pubs) == 0 {
		p.finishOffer(nil) // settles an Unpublish cut short by the loss
		return
	}
	for _, pub := range pubs {
		if err := p.addSender(s, pub); err != nil {
			p.withdraw(s, pub)
			p.pushEvent(&signal.Message{Type: signal.TypeError, Code: signal.CodeInternal,
				Message: fmt.Sprintf("publish %s again: %v", pub.source, err)})
		}
	}
	p.offer(s)
	p.mu.Lock()
	err := p.lastOfferErr
	if p.offerGen == gen {
		err = nil // not settled yet (glare): the server's offer comes first
	}
	p.mu.Unlock()
	if err != nil {
		se := signal.AsError(err)
		p.pushEvent(&signal.Message{Type: signal.TypeError, Code: se.Code, Message: "publish again after rejoining: " + se.Message})
	}
}

// Unpublish stops sending a track and renegotiates. s is the sender
// Publish returned (or the latest session's).
func (p *Peer) Unpublish(ctx context.Context, s *webrtc.RTPSender) error {
	gen := make(chan int, 1)
	errc := make(chan error, 1)
	p.enqueue(func() {
		cur := p.session()
		pub := p.publicationOf(s)
		if pub == nil {
			// Not (or no longer) published: pion says what is wrong.
			if err := cur.pc.RemoveTrack(s); err != nil {
				errc <- err
				return
			}
		} else {
			p.withdraw(cur, pub)
		}
		p.mu.Lock()
		gen <- p.offerGen
		p.mu.Unlock()
		p.offer(cur)
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
	if _, err := p.session().sig.Request(ctx, &signal.Message{Type: signal.TypeSubscribe, Subscriptions: subs}); err != nil {
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

// onTrack hands a forwarded track of session s to OnTrack, described as
// the server announced it.
func (p *Peer) onTrack(s *session, t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	if !p.current(s) {
		return // a late callback of a session that is gone
	}
	p.mu.Lock()
	info, ok := p.tracks[t.ID()]
	if !ok {
		for _, tr := range s.pc.GetTransceivers() {
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
		p.params.OnTrack(&RemoteTrack{Info: info, Track: t, Receiver: r, URL: s.url})
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
