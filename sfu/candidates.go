package sfu

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// maxHeldCandidates bounds the remote candidates kept before a remote
// description exists; a client sends a handful, more is abuse.
const maxHeldCandidates = 64

// onLocalCandidate holds candidates until the SDP they belong to is sent.
func (p *Peer) onLocalCandidate(c *webrtc.ICECandidate) {
	var init *webrtc.ICECandidateInit
	if c != nil {
		ci := c.ToJSON()
		init = &ci
	}
	// pion may call this from inside SetLocalDescription, while p.mu is
	// held: only candMu may be taken here.
	p.candMu.Lock()
	if !p.sdpSent {
		p.heldLocal = append(p.heldLocal, init)
		p.candMu.Unlock()
		return
	}
	p.candMu.Unlock()
	if p.params.OnCandidate != nil {
		p.params.OnCandidate(init)
	}
}

// sdpOnWireLocked releases candidates held for the first SDP. Called with
// p.mu held, right after the SDP was handed to the signaling connection,
// whose queue keeps the order.
func (p *Peer) sdpOnWireLocked() {
	p.candMu.Lock()
	defer p.candMu.Unlock()
	if p.sdpSent {
		return
	}
	p.sdpSent = true
	for _, c := range p.heldLocal {
		if p.params.OnCandidate != nil {
			p.params.OnCandidate(c)
		}
	}
	p.heldLocal = nil
}

// AddCandidate applies a remote candidate, or holds it until a remote
// description exists. Candidates outside the allowed networks are dropped.
func (p *Peer) AddCandidate(c webrtc.ICECandidateInit) error {
	if c.Candidate == "" {
		return nil // end of candidates
	}
	cand, err := ice.UnmarshalCandidate(c.Candidate)
	if err != nil {
		return fmt.Errorf("parse remote candidate: %w: %w", ErrCandidate, err)
	}
	if !p.allowedCandidate(cand) {
		p.log.Debug("dropped remote candidate outside the allowed networks", "address", cand.Address())
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	if p.pc.RemoteDescription() == nil {
		if len(p.heldRemote) < maxHeldCandidates {
			p.heldRemote = append(p.heldRemote, c)
		}
		return nil
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("add remote candidate: %w: %w", ErrCandidate, err)
	}
	return nil
}

func (p *Peer) allowedCandidate(c ice.Candidate) bool {
	addr, err := netip.ParseAddr(c.Address())
	if err != nil {
		// A hostname: an mDNS name, usable only when mDNS is on.
		return p.engine.cfg.MDNS && strings.HasSuffix(c.Address(), ".local")
	}
	return p.engine.cfg.AllowsAddr(addr)
}

func (p *Peer) applyHeldRemoteLocked() {
	for _, c := range p.heldRemote {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("add held remote candidate", "err", err)
		}
	}
	p.heldRemote = nil
}
