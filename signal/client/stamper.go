package client

import (
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Stamper puts the mid and rid header extensions on simulcast packets.
// Browsers add them themselves; pion does not, and without them an SFU
// cannot tell the layers apart.
type Stamper struct {
	midID, ridID uint8
	mid          []byte
	rids         map[string][]byte // the sender's RIDs, converted once
}

// NewStamper reads the negotiated extension ids and the media section of a
// published sender (call it after Publish returned).
func (p *Peer) NewStamper(s *webrtc.RTPSender) (*Stamper, error) {
	return newStamper(p.pc, s)
}

func newStamper(pc *webrtc.PeerConnection, s *webrtc.RTPSender) (*Stamper, error) {
	st := &Stamper{rids: map[string][]byte{}}
	for _, e := range s.GetParameters().Encodings {
		st.rids[e.RID] = []byte(e.RID)
	}
	for _, e := range s.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			st.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			st.ridID = uint8(e.ID)
		}
	}
	for _, t := range pc.GetTransceivers() {
		if t.Sender() == s {
			st.mid = []byte(t.Mid())
		}
	}
	if st.midID == 0 || st.ridID == 0 || len(st.mid) == 0 {
		return nil, ErrNoSimulcastExtensions
	}
	return st, nil
}

// Stamp sets the extensions on h for the layer rid.
func (st *Stamper) Stamp(h *rtp.Header, rid string) {
	_ = h.SetExtension(st.midID, st.mid)
	r, ok := st.rids[rid]
	if !ok {
		r = []byte(rid)
	}
	_ = h.SetExtension(st.ridID, r)
}
