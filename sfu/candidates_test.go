package sfu

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/pion/webrtc/v4"
)

func hostCandidate(ip string, port int) webrtc.ICECandidateInit {
	return webrtc.ICECandidateInit{Candidate: fmt.Sprintf("candidate:1 1 udp 2130706431 %s %d typ host", ip, port)}
}

// remoteCandidates lists the addresses of the remote candidates the
// server's ICE agent knows.
func remoteCandidates(p *Peer) []string {
	var out []string
	for _, s := range p.pc.GetStats() {
		if c, ok := s.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate {
			out = append(out, fmt.Sprintf("%s:%d", c.IP, c.Port))
		}
	}
	return out
}

// Remote candidates outside the allowed networks (loopback here) are
// dropped on arrival: held ones never crowd out good ones, and none reach
// ICE. Unparsable ones are refused with ErrCandidate.
func TestRemoteCandidatesOutsideAllowedNetworksDropped(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 1)
	c := newClient(t, e, clientOpts{manual: true})
	add := func(ci webrtc.ICECandidateInit) {
		t.Helper()
		if err := c.peer.AddCandidate(ci); err != nil {
			t.Fatalf("add %q: %v", ci.Candidate, err)
		}
	}
	// Before a remote description exists candidates are held, at most
	// maxHeldCandidates: junk first, then a good one that must survive.
	for i := 0; i < maxHeldCandidates; i++ {
		add(hostCandidate(fmt.Sprintf("10.9.0.%d", i+1), 5000))
	}
	add(webrtc.ICECandidateInit{Candidate: "candidate:2 1 udp 2130706431 3e1b7d62-6f6a.local 5000 typ host"})
	add(webrtc.ICECandidateInit{Candidate: "candidate:3 1 udp 1694498815 192.168.7.7 6000 typ srflx raddr 0.0.0.0 rport 0"})
	add(hostCandidate("127.0.0.1", 9)) // the discard port: checks to it go nowhere
	add(webrtc.ICECandidateInit{})     // end of candidates
	err := c.peer.AddCandidate(webrtc.ICECandidateInit{Candidate: "candidate:garbage"})
	if !errors.Is(err, ErrCandidate) || !strings.Contains(err.Error(), "parse remote candidate") {
		t.Fatalf("unparsable candidate: %v, want ErrCandidate with its cause", err)
	}
	c.peer.mu.Lock()
	held := len(c.peer.heldRemote)
	c.peer.mu.Unlock()
	if held != 1 {
		t.Fatalf("%d candidates held, want only the loopback one", held)
	}

	if err := c.peer.Subscribe(recvs[0].ID()); err != nil {
		t.Fatal(err)
	}
	c.answerNow(wait.Recv(t, c.offers, patience, "the server offer"))
	c.waitConnected()
	add(hostCandidate("10.9.9.9", 5000)) // after the remote description too
	wait.For(t, patience, "the held loopback candidate to reach ICE", func() bool {
		for _, a := range remoteCandidates(c.peer) {
			if a == "127.0.0.1:9" {
				return true
			}
		}
		return false
	})
	for _, a := range remoteCandidates(c.peer) {
		if !strings.HasPrefix(a, "127.") {
			t.Errorf("remote candidate %s outside the allowed networks reached ICE", a)
		}
	}
}
