package client

import (
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Stamper puts the mid and rid header extensions on simulcast packets.
// Browsers add them themselves; pion does not, and without them an SFU
// cannot tell the layers apart. A Peer's stampers follow their track into
// every new session after a rejoin.
type Stamper struct {
	ids atomic.Pointer[stampIDs]
}

// stampIDs are what one session negotiated for one sender.
type stampIDs struct {
	midID, ridID uint8
	mid          []byte
	rids         map[string][]byte // the sender's RIDs, converted once
}

// NewStamper reads the negotiated extension ids and the media section of a
// published sender (call it after Publish returned).
func (p *Peer) NewStamper(s *webrtc.RTPSender) (*Stamper, error) {
	pub := p.publicationOf(s)
	if pub == nil {
		return newStamper(p.PeerConnection(), s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := newStamper(p.cur.pc, pub.sender)
	if err != nil {
		return nil, err
	}
	pub.stampers = append(pub.stampers, st)
	return st, nil
}

// restamp points the stampers of every publication at what session s
// negotiated (called after each answered own offer).
func (p *Peer) restamp(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pub := range p.pubs {
		if len(pub.stampers) == 0 {
			continue
		}
		ids, err := stampIDsOf(s.pc, pub.sender)
		if err != nil {
			s.log.Warn("simulcast stamps after rejoining", "source", pub.source, "err", err)
			continue
		}
		for _, st := range pub.stampers {
			st.ids.Store(ids)
		}
	}
}

func newStamper(pc *webrtc.PeerConnection, s *webrtc.RTPSender) (*Stamper, error) {
	ids, err := stampIDsOf(pc, s)
	if err != nil {
		return nil, err
	}
	st := &Stamper{}
	st.ids.Store(ids)
	return st, nil
}

func stampIDsOf(pc *webrtc.PeerConnection, s *webrtc.RTPSender) (*stampIDs, error) {
	ids := &stampIDs{rids: map[string][]byte{}}
	for _, e := range s.GetParameters().Encodings {
		ids.rids[e.RID] = []byte(e.RID)
	}
	for _, e := range s.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			ids.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ids.ridID = uint8(e.ID)
		}
	}
	for _, t := range pc.GetTransceivers() {
		if t.Sender() == s {
			ids.mid = []byte(t.Mid())
		}
	}
	if ids.midID == 0 || ids.ridID == 0 || len(ids.mid) == 0 {
		return nil, ErrNoSimulcastExtensions
	}
	return ids, nil
}

// Stamp sets the extensions on h for the layer rid.
func (st *Stamper) Stamp(h *rtp.Header, rid string) {
	ids := st.ids.Load()
	_ = h.SetExtension(ids.midID, ids.mid)
	r, ok := ids.rids[rid]
	if !ok {
		r = []byte(rid)
	}
	_ = h.SetExtension(ids.ridID, r)
}
